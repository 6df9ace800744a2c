using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>
/// What the server writes to a device: the answer to <c>sync</c>, and the Disconnect that ends the
/// connection at shutdown. Kestrel asks for the close on a thread of its own while the handler may be
/// writing an answer, and a pipe takes one writer at a time: they take turns.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The semaphore's wait handle is never created; a close requested after the connection ended may still take it.")]
internal sealed class DeviceReplies(PipeWriter output)
{
    private readonly SemaphoreSlim _turn = new(1, 1);
    private bool _closed;

    /// <summary>
    /// Answers <c>sync</c> with <c>ok N</c>: the store has the N readings this connection gave it, every
    /// one the device sent before the <c>sync</c>. Nothing is written once the output is closed.
    /// </summary>
    public async ValueTask AcknowledgeAsync(long readings)
    {
        await _turn.WaitAsync();
        try
        {
            if (!_closed)
            {
                output.Write(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{ReadingParser.SyncAnswer}{readings}\n")));

                // A device that sends sync and never reads the answers stalls here, on its own connection only.
                await output.FlushAsync();
            }
        }
        finally
        {
            _turn.Release();
        }
    }

    /// <summary>Completes the output, which sends the device a Disconnect; an answer the device is not reading is given up first.</summary>
    public async Task CloseAsync()
    {
        output.CancelPendingFlush();
        await _turn.WaitAsync();
        try
        {
            if (!_closed)
            {
                _closed = true;
                await output.CompleteAsync();
            }
        }
        finally
        {
            _turn.Release();
        }
    }
}
