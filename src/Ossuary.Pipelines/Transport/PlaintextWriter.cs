using System.Buffers;
using System.IO.Pipelines;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// The application's end of the plaintext output: the plaintext pipe's writer, except that
/// completing it with an exception completes the pipe cleanly and parks the exception here.
/// </summary>
/// <remarks>
/// Why this exists (the output's counterpart of <see cref="PlaintextReader"/>): a <see cref="Pipe"/>
/// whose writer completes with an exception throws it from the reader's very next read, even with
/// unread data buffered. The outbound loop then never saw the bytes the application had written
/// (and flushed, and been told were accepted) just before it failed, and the peer got the
/// Disconnect (error) without them. Parked here, the failure is read by the outbound loop once the
/// pipe has given it everything: it seals those bytes, then sends the Disconnect (error).
/// It also counts what the application has put in the output (<see cref="Written"/>), which
/// <see cref="OssuaryDuplexPipe.WhenSentAsync"/> callers wait for.
/// </remarks>
internal sealed class PlaintextWriter(PipeWriter inner) : PipeWriter
{
    private volatile Exception? _failure;
    private long _written;

    /// <summary>The exception the application completed the output with; read it after a completed read.</summary>
    public Exception? Failure => _failure;

    /// <summary>Plaintext bytes put in the output so far, flushed or not: they are all sent unless the connection fails.</summary>
    public long Written => Volatile.Read(ref _written);

    public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => inner.UnflushedBytes;

    public override void Advance(int bytes)
    {
        inner.Advance(bytes);
        Volatile.Write(ref _written, _written + bytes); // one writer at a time, as for any PipeWriter
    }

    public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

    // Copied here, not by the pipe's WriteAsync, so that Written is exact: that one drops a source
    // whose token is already cancelled, but keeps (and sends) one cancelled while it waits for room.
    public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<FlushResult>(cancellationToken); // as the pipe's: nothing written
        }

        this.Write(source.Span);
        return inner.FlushAsync(cancellationToken);
    }

    public override void CancelPendingFlush() => inner.CancelPendingFlush();

    // The failure is parked before the completion that publishes it to the outbound loop.
    public override void Complete(Exception? exception = null)
    {
        Park(exception);
        inner.Complete();
    }

    public override ValueTask CompleteAsync(Exception? exception = null)
    {
        Park(exception);
        return inner.CompleteAsync();
    }

    /// <summary>
    /// Parks an abort's reason without completing the pipe: the abort comes from any thread, and
    /// completing a writer under a GetMemory/Advance/FlushAsync in progress on another fails that
    /// write and can hand the memory it is filling back to the pool. The caller wakes the outbound
    /// loop, which ends the output by completing its reader: the writer's next flush reports completed.
    /// </summary>
    public void Abort(Exception reason) => Park(reason);

    private void Park(Exception? exception)
    {
        if (exception is not null)
        {
            Interlocked.CompareExchange(ref _failure, exception, null);
        }
    }
}
