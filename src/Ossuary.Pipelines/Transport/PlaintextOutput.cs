using System.Buffers;
using System.IO.Pipelines;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// The plaintext output: the writer the application sees and the outbound loop's reader end, in one
/// object with no pipe behind it. It holds pooled plaintext blocks (<see cref="PlaintextMemoryPool"/>,
/// each its own sequence segment) only while bytes are buffered, so an idle output is this object and
/// its lock (a <see cref="Pipe"/> and the writer that wrapped it held seven objects, about 590 B a side).
/// </summary>
/// <remarks>
/// <para>
/// The buffer keeps the contract of the <see cref="Pipe"/> it replaces: a flush commits what was advanced
/// and waits for room once four full frames are unconsumed, until the outbound loop has taken them down to
/// under two; a token cancels a waiting flush (its bytes stay committed); <see cref="CancelPendingFlush"/>
/// ends a waiting flush, or the next one, with a cancelled result; the loop's reads return everything
/// committed, and a read the loop's <see cref="CancelOutboundRead"/> ended returns cancelled. Blocks are
/// zeroed as they go back to the pool: once consumed, and at the end when both sides are done.
/// </para>
/// <para>
/// Completing with an exception completes the output cleanly and parks the exception (<see cref="Failure"/>):
/// a <see cref="Pipe"/> whose writer completes with an exception throws it from the reader's very next read,
/// even with unread data buffered, and the peer got the Disconnect (error) without the bytes the application
/// had written (and been told were accepted) just before it failed. Parked, the failure is read by the outbound
/// loop once it has everything: it seals those bytes, then sends the Disconnect (error). The output also counts
/// what the application has put in it (<see cref="Written"/>), which
/// <see cref="OssuaryDuplexPipe.WhenSentAsync"/> callers wait for.
/// </para>
/// <para>
/// Both ends take one lock (an object the application never sees). Waiting reads and flushes complete through
/// reusable sources that run their continuations on the thread pool, never inline on the other end's thread:
/// the outbound loop stays a separate hand-off, so several small writes still go out in one transport flush.
/// </para>
/// </remarks>
internal sealed partial class PlaintextOutput : PipeWriter
{
    private volatile Exception? _failure;
    private long _written;
    private ApplicationCallGate _call;
    private volatile bool _completedAfterWrite;

    // Set when disposal completed the output itself, no write being in progress.
    private volatile bool _completedByDisposal;

    // What is left of the memory the last GetMemory or GetSpan gave: the most Advance may count once
    // the connection has ended, when the buffer, which checks that itself, is no longer told.
    private int _given;

    // Set when the connection ended under the application (the peer's Disconnect, a Reset, a failure):
    // from then on a flush reports completed at once, as the pipe's did only once the outbound loop
    // had finished its farewell and let its reader go, a moment after the application's read saw the end.
    private volatile bool _connectionEnded;

    /// <summary>Runs between two spans of a <see cref="WriteAsync"/> copy; tests only (null otherwise).</summary>
    internal static Action<PlaintextOutput>? BetweenSpansForTests;

    /// <summary>True once the connection has ended under the application (see <see cref="EndConnection"/>): nothing more is sent.</summary>
    public bool ConnectionEnded => _connectionEnded;

    /// <summary>The exception the application completed the output with; read it after a completed read.</summary>
    public Exception? Failure => _failure;

    /// <summary>Plaintext bytes put in the output so far, flushed or not: they are all sent unless the connection fails.</summary>
    public long Written => Volatile.Read(ref _written);

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes => _chain.Unflushed;

    /// <summary>True while disposal waits for a write in progress to end before it completes the output.</summary>
    public bool CompletionWaiting => _call.CompletionWaiting;

    public override void Advance(int bytes)
    {
        // Once the connection has ended nothing more is sent, and a flush no longer commits or waits
        // for room: advanced, the bytes piled up for as long as the outbound loop was stuck on a peer
        // that said goodbye and stopped reading (without bound for a writer that ignores IsCompleted,
        // as Output.AsStream() does). Not advancing hands the same memory to the next write, as a pipe
        // whose reader has completed does. Still counted: they were not sent.
        if (_connectionEnded)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(bytes);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, _given);
        }
        else
        {
            AdvanceBuffer(bytes);
        }

        _given -= bytes; // two Advances of one memory count together, as a pipe counts them

        Volatile.Write(ref _written, _written + bytes); // one writer at a time, as for any PipeWriter
        LeaveCall();
    }

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        EnterCall();
        Memory<byte> memory = RentMemory(sizeHint);
        _given = memory.Length;
        return memory;
    }

    public override Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        LeaveCall(); // a span taken and given up without Advance ends the write too

        // Disposal that landed between Advance and this flush completed the output at once (completing commits
        // what was advanced): a pipe's flush then said nothing of it (not completed), and the writer's next
        // GetMemory threw. A write disposal lands under is told the end, as one under GetMemory is.
        if (_completedAfterWrite || _completedByDisposal || _connectionEnded)
        {
            return new ValueTask<FlushResult>(Ended); // disposed under the write, or nothing more is sent
        }

        return FlushBuffer(cancellationToken);
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
        EndWaitingFlush();
    }

    private static FlushResult Ended => new(isCanceled: false, isCompleted: true);

    // Copied here chunk by chunk, not by the base WriteAsync, so that Written is exact: a pipe's drops a source
    // whose token is already cancelled, but keeps (and sends) one cancelled while it waits for room.
    public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<FlushResult>(cancellationToken); // as a pipe's: nothing written
        }

        long before = _written;
        try
        {
            Copy(source.Span);
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
            // The token was cancelled while the bytes were copied, and the flush was refused at once, before
            // committing them: Written counted bytes nothing would send, and OssuaryStream's FlushAsync waited
            // for them forever. Committed now, the write ends as one cancelled while it waited for room: an
            // OperationCanceledException, its bytes still sent.
            CommitBuffer();
        }

        return flush;
    }

    public override void CancelPendingFlush() => CancelFlush();

    // The failure is parked before the completion that publishes it to the outbound loop.
    public override void Complete(Exception? exception = null)
    {
        Park(exception);
        _call.MarkCompleted();
        CompleteBuffer();
    }

    public override ValueTask CompleteAsync(Exception? exception = null)
    {
        Complete(exception);
        return default;
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
        CompleteBuffer();
        return true;
    }

    /// <summary>
    /// Parks an abort's reason without completing the output: the abort comes from any thread, and
    /// completing under a GetMemory/Advance/FlushAsync in progress on another fails that write and can
    /// hand the memory it is filling back to the pool. The caller wakes the outbound loop, which ends the
    /// output by completing its reader end: the writer's next flush reports completed.
    /// </summary>
    public void Abort(Exception reason) => Park(reason);

    private void Copy(ReadOnlySpan<byte> source)
    {
        while (true)
        {
            Span<byte> span = GetSpan();
            int count = Math.Min(span.Length, source.Length);
            source[..count].CopyTo(span);
            Advance(count);
            source = source[count..];
            if (source.IsEmpty)
            {
                return;
            }

            BetweenSpansForTests?.Invoke(this);
        }
    }

    /// <summary>
    /// Refuses a write once the end is completed without asking the buffer: disposal on another thread
    /// marks the gate before it completes the buffer, and memory handed out in between went back to the
    /// pool under the write. Within a write whose completion waits (GetMemory again before Advance), the
    /// memory is still its own.
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
            CompleteBuffer(); // what the write put in is committed, and sent before the Disconnect
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
