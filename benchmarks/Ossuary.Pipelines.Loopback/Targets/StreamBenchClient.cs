using Ossuary.Pipelines.Loopback.Wire;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>A client over a <see cref="Stream"/>: a socket's NetworkStream or an SslStream over one.</summary>
internal sealed class StreamBenchClient(Stream stream) : IBenchClient
{
    private static readonly byte[] PingMessage = [BenchWire.Ping];
    private readonly byte[] _answer = new byte[1];
    private readonly byte[] _header = new byte[BenchWire.BulkHeaderSize];
    private Task? _idleRead;

    public async Task PingAsync(CancellationToken cancellationToken)
    {
        await stream.WriteAsync(PingMessage, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        await ExpectAsync(BenchWire.Pong, cancellationToken).ConfigureAwait(false);
    }

    public async Task SendBulkAsync(long count, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken)
    {
        BenchWire.WriteBulkHeader(_header, count);
        await stream.WriteAsync(_header, cancellationToken).ConfigureAwait(false);
        for (long left = count; left > 0; left -= chunk.Length)
        {
            await stream.WriteAsync(left >= chunk.Length ? chunk : chunk[..(int)left], cancellationToken).ConfigureAwait(false);
        }

        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        await ExpectAsync(BenchWire.BulkDone, cancellationToken).ConfigureAwait(false);
    }

    public void StartIdleRead() => _idleRead = stream.ReadAsync(_answer).AsTask();

    public async ValueTask DisposeAsync()
    {
        await stream.DisposeAsync().ConfigureAwait(false);
        if (_idleRead is not null)
        {
            try
            {
                await _idleRead.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException)
            {
                // the idle read ends with the connection
            }
        }
    }

    private async Task ExpectAsync(byte expected, CancellationToken cancellationToken)
    {
        await stream.ReadExactlyAsync(_answer, cancellationToken).ConfigureAwait(false);
        if (_answer[0] != expected)
        {
            throw new InvalidDataException($"the server answered {_answer[0]} instead of {expected}");
        }
    }
}
