using System.IO.Pipelines;
using Ossuary.Pipelines.Loopback.Wire;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>A client over a plaintext <see cref="IDuplexPipe"/>: the pipes client, or a raw adapter.</summary>
internal sealed class PipeBenchClient(IDuplexPipe pipe, Func<ValueTask> dispose) : IBenchClient
{
    private static readonly byte[] PingMessage = [BenchWire.Ping];
    private readonly byte[] _header = new byte[BenchWire.BulkHeaderSize];
    private Task<ReadResult>? _idleRead;

    public async Task PingAsync(CancellationToken cancellationToken)
    {
        await pipe.Output.WriteAsync(PingMessage, cancellationToken).ConfigureAwait(false);
        await ExpectAsync(BenchWire.Pong, cancellationToken).ConfigureAwait(false);
    }

    public async Task SendBulkAsync(long count, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken)
    {
        PipeWriter output = pipe.Output;
        BenchWire.WriteBulkHeader(_header, count);
        await output.WriteAsync(_header, cancellationToken).ConfigureAwait(false);
        for (long left = count; left > 0; left -= chunk.Length)
        {
            // WriteAsync is a write and a flush: one frame per write unless the sender falls behind.
            FlushResult flushed = await output.WriteAsync(left >= chunk.Length ? chunk : chunk[..(int)left], cancellationToken).ConfigureAwait(false);
            if (flushed.IsCompleted)
            {
                throw new IOException("the connection closed during a bulk transfer");
            }
        }

        await ExpectAsync(BenchWire.BulkDone, cancellationToken).ConfigureAwait(false);
    }

    public void StartIdleRead() => _idleRead = pipe.Input.ReadAsync().AsTask();

    public async ValueTask DisposeAsync()
    {
        if (_idleRead is not null)
        {
            pipe.Input.CancelPendingRead();
            try
            {
                ReadResult read = await _idleRead.ConfigureAwait(false);
                pipe.Input.AdvanceTo(read.Buffer.Start);
            }
            catch (Exception ex) when (ex is IOException or OssuaryException or OperationCanceledException)
            {
                // the idle read ends with the connection
            }
        }

        await dispose().ConfigureAwait(false);
    }

    private async Task ExpectAsync(byte expected, CancellationToken cancellationToken)
    {
        PipeReader input = pipe.Input;
        while (true)
        {
            ReadResult read = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (!read.Buffer.IsEmpty)
            {
                byte answer = read.Buffer.FirstSpan[0];
                input.AdvanceTo(read.Buffer.GetPosition(1));
                if (answer != expected)
                {
                    throw new InvalidDataException($"the server answered {answer} instead of {expected}");
                }

                return;
            }

            input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                throw new EndOfStreamException("the server closed the connection instead of answering");
            }
        }
    }
}
