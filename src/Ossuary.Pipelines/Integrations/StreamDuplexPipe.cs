using System.IO.Pipelines;
using System.Net.Sockets;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>Pipes over a <see cref="Stream"/> (a socket's <see cref="System.Net.Sockets.NetworkStream"/>, an <see cref="OssuaryStream"/>'s inner stream).</summary>
/// <param name="stream">The stream.</param>
/// <param name="leaveOpen">Whether <see cref="DisposeStreamAsync"/> leaves the stream to its owner.</param>
/// <param name="mayStopReading">Whether the stream's socket may stop receiving when the connection ends: the stream is
/// disposed then (by this pipe or by the <see cref="OssuaryStream"/> that owns it), so nobody reads it again.</param>
internal sealed class StreamDuplexPipe(Stream stream, bool leaveOpen, bool mayStopReading) : IDuplexPipe, IReadStoppingTransport
{
    // Zero-byte reads: an idle connection waits for data before it rents its 64 KiB read buffer,
    // instead of holding one for as long as the peer is quiet.
    private static readonly StreamPipeReaderOptions ReaderOptions = new(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true, useZeroByteReads: true);

    // A 128 KiB segment holds a whole batch of sealed frames (an application that flushes faster
    // than the socket drains has up to 64 KiB queued), which then leaves in one socket write; a
    // 32 KiB segment held one full frame, so each frame was its own write.
    private static readonly StreamPipeWriterOptions WriterOptions = new(minimumBufferSize: 128 * 1024, leaveOpen: true);

    public PipeReader Input { get; } = PipeReader.Create(stream, ReaderOptions);

    public PipeWriter Output { get; } = PipeWriter.Create(stream, WriterOptions);

    /// <summary>
    /// A socket nobody reads after this connection stops receiving: on Linux a pending receive then
    /// returns 0 bytes, which ends the read as the peer's close would, where cancelling it throws
    /// (and catches) an exception inside the pipe reader, once a connection. Elsewhere (shutdown need
    /// not wake a pending receive there) and for a stream the caller goes on owning, false.
    /// </summary>
    public bool TryStopReading()
    {
        if (!mayStopReading || !OperatingSystem.IsLinux() || stream is not NetworkStream { Socket: var socket })
        {
            return false;
        }

        try
        {
            socket.Shutdown(SocketShutdown.Receive);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Shuts a socket stream down in both directions: a pending send fails whether or not the peer
    /// reads, and on Linux a pending receive ends (elsewhere disposal ends it, as <see cref="TryStopReading"/>
    /// explains). Not disposed here: the stream's owner still disposes it,
    /// and a stream disposed under the pipes' reads fails them with ObjectDisposedException, which
    /// reads as a bug of ours rather than an ended connection.
    /// </summary>
    public void Abort()
    {
        if (leaveOpen || stream is not NetworkStream { Socket: var socket })
        {
            return;
        }

        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed or reset: nothing left to stop.
        }
    }

    public async ValueTask DisposeStreamAsync()
    {
        if (!leaveOpen)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }
}
