namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A stream over another whose writes wait while the gate is shut, and fail once it is broken: an
/// inner stream that stalls or dies under an <c>OssuaryStream</c>. Reads pass straight through.
/// </summary>
internal sealed class GatedStream(Stream inner) : Stream
{
    private volatile TaskCompletionSource _gate = OpenGate();
    private volatile TaskCompletionSource _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _broken;
    private int _shutAfterNextWrite;

    /// <summary>Completes once a write waits at the shut gate (since the last <see cref="OpenOnce"/>).</summary>
    public Task Waiting => _waiting.Task;

    public void Shut() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Open() => _gate.TrySetResult();

    /// <summary>Lets one write through, then shuts again.</summary>
    public void OpenOnce()
    {
        _waiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _shutAfterNextWrite, 1);
        _gate.TrySetResult();
    }

    public void Break()
    {
        _broken = true;
        _gate.TrySetResult();
    }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        TaskCompletionSource gate = _gate;
        if (!gate.Task.IsCompleted)
        {
            _waiting.TrySetResult();
        }

        await gate.Task.WaitAsync(cancellationToken);
        if (Interlocked.Exchange(ref _shutAfterNextWrite, 0) == 1)
        {
            Shut();
        }

        if (_broken)
        {
            throw new IOException("the gated stream broke");
        }

        await inner.WriteAsync(buffer, cancellationToken);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _gate.TrySetResult();
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private static TaskCompletionSource OpenGate()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        gate.SetResult();
        return gate;
    }
}
