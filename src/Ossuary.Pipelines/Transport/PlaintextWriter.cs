using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// The application's end of the plaintext output: the plaintext pipe's writer, except that
/// completing it with an exception completes the pipe cleanly and parks the exception here.
/// </summary>
/// <remarks>
/// Why this exists (the output's counterpart of <see cref="PlaintextInput"/>): a <see cref="Pipe"/>
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
    private ApplicationCallGate _call;
    private volatile bool _completedAfterWrite;

    // Set when disposal completed the output itself, no write being in progress.
    private volatile bool _completedByDisposal;

    // What is left of the memory the last GetMemory or GetSpan gave: the most Advance may count once
    // the connection has ended, when the pipe, which checks that itself, is no longer told.
    private int _given;

    // Set when the connection ended under the application (the peer's Disconnect, a Reset, a failure):
    // from then on a flush reports completed at once, as the pipe's does only once the outbound loop
    // has finished its farewell and let its reader go, a moment after the application's read saw the end.
    private volatile bool _connectionEnded;

    /// <summary>True once the connection has ended under the application (see <see cref="EndConnection"/>): nothing more is sent.</summary>
    public bool ConnectionEnded => _connectionEnded;

    /// <summary>The exception the application completed the output with; read it after a completed read.</summary>
    public Exception? Failure => _failure;

    /// <summary>Plaintext bytes put in the output so far, flushed or not: they are all sent unless the connection fails.</summary>
    public long Written => Volatile.Read(ref _written);

    public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => inner.UnflushedBytes;

    /// <summary>True while disposal waits for a write in progress to end before it completes the output.</summary>
    public bool CompletionWaiting => _call.CompletionWaiting;

    public override void Advance(int bytes)
    {
        // Once the connection has ended nothing more is sent, and a flush no longer commits or waits
        // for room: advanced, the bytes piled up in the pipe for as long as the outbound loop was
        // stuck on a peer that said goodbye and stopped reading (without bound for a writer that
        // ignores IsCompleted, as Output.AsStream() does). Not advancing hands the same memory to the
        // next write, as a pipe whose reader has completed does. Still counted: they were not sent.
        if (_connectionEnded)
        {
            // As a pipe whose reader has completed: the count is checked, and the memory stays the writer's.
            ArgumentOutOfRangeException.ThrowIfNegative(bytes);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, _given);
        }
        else
        {
            inner.Advance(bytes);
        }

        _given -= bytes; // two Advances of one memory count together, as a pipe counts them

        Volatile.Write(ref _written, _written + bytes); // one writer at a time, as for any PipeWriter
        LeaveCall();
    }

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        EnterCall();
        Memory<byte> memory = inner.GetMemory(sizeHint);
        _given = memory.Length;
        return memory;
    }

    public override Span<byte> GetSpan(int sizeHint = 0)
    {
        EnterCall();
        Span<byte> span = inner.GetSpan(sizeHint);
        _given = span.Length;
        return span;
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        LeaveCall(); // a span taken and given up without Advance ends the write too

        // Disposal that landed between Advance and this flush completed the output at once (completing commits
        // what was advanced): the pipe's flush then said nothing of it (not completed), and the writer's next
        // GetMemory threw. A write disposal lands under is told the end, as one under GetMemory is.
        if (_completedAfterWrite || _completedByDisposal || _connectionEnded)
        {
            return new ValueTask<FlushResult>(Ended); // disposed under the write, or nothing more is sent
        }

        ValueTask<FlushResult> flush = inner.FlushAsync(cancellationToken);
        if (!flush.IsCompletedSuccessfully)
        {
            return flush.IsCompleted ? flush : WaitForRoomAsync(flush);
        }

        // Cancelled by EndConnection between the check above and the pipe's flush: the end, as below.
        FlushResult result = flush.Result;
        return new ValueTask<FlushResult>(result.IsCanceled && _connectionEnded ? Ended : result);
    }

    /// <summary>
    /// The connection has ended in both directions (the inbound loop saw the session end): every later
    /// flush returns completed. Call before the application's input reports the end, so that a write
    /// made after a read saw it is told its bytes go nowhere, not that they are on their way.
    /// </summary>
    public void EndConnection()
    {
        _connectionEnded = true;

        // A flush already waiting for room (the output stuck on a peer that said goodbye and stopped
        // reading) waited on until the output unstuck or disposal, up to its 5 s: woken, it returns
        // completed as a flush made from now on does. Its bytes were committed, and go nowhere either way.
        inner.CancelPendingFlush();
    }

    private static FlushResult Ended => new(isCanceled: false, isCompleted: true);

    // Only flushes that wait for room come here: the common flush allocates nothing.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<FlushResult> WaitForRoomAsync(ValueTask<FlushResult> flush)
    {
        FlushResult result = await flush.ConfigureAwait(false);
        return result.IsCanceled && _connectionEnded ? Ended : result;
    }

    // Copied here, not by the pipe's WriteAsync, so that Written is exact: that one drops a source
    // whose token is already cancelled, but keeps (and sends) one cancelled while it waits for room.
    public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<FlushResult>(cancellationToken); // as the pipe's: nothing written
        }

        long before = _written;
        try
        {
            this.Write(source.Span);
        }
        catch (InvalidOperationException) when (_written != before && (_completedAfterWrite || _completedByDisposal))
        {
            // Disposal landed between two spans of this copy: the first span's Advance ended the call, and
            // the output was completed before the next GetSpan, which threw from the middle of WriteAsync.
            // That is a write disposal ended, whose documented outcome is a completed flush. One that had
            // not begun is refused, as a completed pipe's is.
            return new ValueTask<FlushResult>(Ended);
        }

        ValueTask<FlushResult> flush = FlushAsync(cancellationToken);
        if (flush.IsCanceled)
        {
            // The token was cancelled while the bytes were copied, and the pipe refused the flush at once,
            // before committing them: Written counted bytes nothing would send, and OssuaryStream's
            // FlushAsync waited for them forever. Committed now, the write ends as one cancelled
            // while it waited for room: an OperationCanceledException, its bytes still sent.
            Commit();
        }

        return flush;
    }

    /// <summary>Commits what the application wrote without waiting for room (a wait is cancelled at once).</summary>
    private void Commit()
    {
        try
        {
            ValueTask<FlushResult> committed = inner.FlushAsync(CancellationToken.None);
            if (!committed.IsCompleted)
            {
                inner.CancelPendingFlush(); // this flush's wait, which is pending: not a later flush's
            }

            // Observed, so that the cancellation is this flush's and the next one starts clean.
            if (committed.IsCompleted)
            {
                _ = committed.Result;
            }
        }
        catch (InvalidOperationException)
        {
            // Disposal completed the writer meanwhile, and completing committed the bytes.
        }
    }

    public override void CancelPendingFlush() => inner.CancelPendingFlush();

    // The failure is parked before the completion that publishes it to the outbound loop.
    public override void Complete(Exception? exception = null)
    {
        Park(exception);
        _call.MarkCompleted();
        inner.Complete();
    }

    public override ValueTask CompleteAsync(Exception? exception = null)
    {
        Park(exception);
        _call.MarkCompleted();
        return inner.CompleteAsync();
    }

    /// <summary>
    /// Disposal's completion, from another thread: now if no write is in progress, else when that
    /// write's Advance or FlushAsync ends it (see <see cref="ApplicationCallGate"/>). False if it had to wait.
    /// </summary>
    public bool CompleteFromDisposal()
    {
        if (!_call.TryCompleteNow())
        {
            return false;
        }

        _completedByDisposal = true;
        inner.Complete();
        return true;
    }

    /// <summary>
    /// Parks an abort's reason without completing the pipe: the abort comes from any thread, and
    /// completing a writer under a GetMemory/Advance/FlushAsync in progress on another fails that
    /// write and can hand the memory it is filling back to the pool. The caller wakes the outbound
    /// loop, which ends the output by completing its reader: the writer's next flush reports completed.
    /// </summary>
    public void Abort(Exception reason) => Park(reason);

    /// <summary>
    /// Refuses a write once the end is completed, as the pipe does, without asking the pipe: disposal
    /// on another thread marks the gate before it completes the pipe, and memory the pipe handed out
    /// in between went back to the pool under the write (its Advance then threw ArgumentOutOfRange).
    /// Within a write whose completion waits (GetMemory again before Advance), the memory is still its own.
    /// </summary>
    private void EnterCall()
    {
        if (!_call.TryEnter() && !_call.CompletionWaiting)
        {
            throw new InvalidOperationException("Writing is not allowed after writer was completed.");
        }
    }

    private void LeaveCall()
    {
        if (_call.Leave())
        {
            _completedAfterWrite = true;
            inner.Complete(); // what the write put in is committed, and sent before the Disconnect
        }
    }

    private void Park(Exception? exception)
    {
        if (exception is not null)
        {
            Interlocked.CompareExchange(ref _failure, exception, null);
        }
    }
}
