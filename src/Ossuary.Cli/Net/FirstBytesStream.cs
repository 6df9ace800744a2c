namespace Ossuary.Cli.Net;

/// <summary>
/// A socket's stream that keeps a copy of the first bytes the peer sent, so that a peer that does
/// not speak Ossuary (a web or SSH server) can be named by what it said, and hands every byte read to
/// <paramref name="arrived"/>.
/// </summary>
internal sealed class FirstBytesStream(Stream inner, ArrivedPlaintext arrived) : Stream
{
    private const int Keep = 64;
    private readonly byte[] _first = new byte[Keep];
    private int _kept;

    /// <summary>The first bytes received (up to 64).</summary>
    public ReadOnlySpan<byte> First => _first.AsSpan(0, Volatile.Read(ref _kept));

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int read = await inner.ReadAsync(buffer, cancellationToken);
        Record(buffer.Span[..read]);
        return read;
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        int read = inner.Read(buffer, offset, count);
        Record(buffer.AsSpan(offset, read));
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>
    /// True once a write was cancelled: the library gives up on a peer that stopped reading when the
    /// connection is disposed (it cancels the pending flush) and drops what was queued, which it only
    /// logs; the tool must not exit 0 after it. (A write that fails is a broken connection, which
    /// the session reports itself.)
    /// </summary>
    public bool WriteAbandoned { get; private set; }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            await inner.WriteAsync(buffer, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            WriteAbandoned = true;
            throw;
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        await base.DisposeAsync();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private void Record(ReadOnlySpan<byte> read)
    {
        arrived.Observe(read);
        int kept = _kept;
        if (kept < Keep && read.Length > 0)
        {
            int count = Math.Min(Keep - kept, read.Length);
            read[..count].CopyTo(_first.AsSpan(kept));
            Volatile.Write(ref _kept, kept + count);
        }
    }
}
