using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// The application's end of the plaintext input: the plaintext pipe's reader, except that a
/// failure which ends the input is reported only after every byte that arrived before it.
/// </summary>
/// <remarks>
/// Why this exists: a <see cref="Pipe"/> whose writer completes with an exception throws it from
/// the reader's very next read, even with unread data buffered. The inbound loop flushes the
/// frames of one transport read and then, if that same read also held the transport's end (no
/// Disconnect) or a forged frame, completes the input; the application then lost the authentic
/// bytes of the earlier frames every time, e.g. the last message of a peer that closes without
/// Disconnect. So the loop completes the pipe cleanly and parks the failure here. Until the
/// application has examined all the data, reads return it with <see cref="ReadResult.IsCompleted"/>
/// false (a completed result would read as a clean end); after that, every read throws.
/// A read that <see cref="CancelPendingRead"/> ended returns an empty buffer: its bytes stay unread for
/// the next read, and the application holds nothing that disposal must wait for.
/// </remarks>
internal sealed class PlaintextReader(PipeReader inner) : PipeReader, IValueTaskSource<ReadResult>
{
    private ExceptionDispatchInfo? _failure;
    private Exception? _completedWith;

    // A read that has to wait completes through this one reusable source (a PipeReader allows one
    // read at a time). The inner pipe calls back inline (PipeScheduler.Inline, see
    // OssuaryDuplexPipe) and the source queues the application's continuation to the thread
    // pool itself: an async method's box is queued as it is, so no read allocates, whichever
    // threads start and finish it.
    private ManualResetValueTaskSourceCore<ReadResult> _pending = new() { RunContinuationsAsynchronously = true };
    private ConfiguredValueTaskAwaitable<ReadResult>.ConfiguredValueTaskAwaiter _innerRead;
    private Action? _innerReadCompleted;
    private ReadOnlySequence<byte> _lastBuffer;

    // 1 from a read's start until its result is out: a second read must not reset the source above under the first.
    private int _waiting;

    // How many bytes at the front of the unconsumed data the application has already examined.
    private long _examined;

    // From ReadAsync to AdvanceTo: disposal completes the pipe only once the application is done with its buffer.
    private ApplicationCallGate _call;

    // Set when a read got an empty result of ours instead of the pipe's (disposal's end, or a cancelled
    // read's): its AdvanceTo, if one comes, is ours to take. Cleared by the next read, as it may never come.
    private bool _handedOurs;

    /// <summary>Parks the failure; call before completing the pipe's writer (whose completion publishes it).</summary>
    public void Fail(Exception failure) => _failure = ExceptionDispatchInfo.Capture(failure);

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        // Claimed before the pipe is asked, atomically, so that two racing reads cannot both pass:
        // Reset below dropped the waiting read's continuation (it never returned, not even after
        // disposal), and the pipe's own refusal of a second read completes its writer, the inbound
        // loop's, with the error.
        if (Interlocked.CompareExchange(ref _waiting, 1, 0) != 0)
        {
            throw new InvalidOperationException("Concurrent reads are not supported: a read of this input is already waiting.");
        }

        _handedOurs = false; // a cancelled read's AdvanceTo that never came
        ValueTask<ReadResult> read;
        try
        {
            read = inner.ReadAsync(cancellationToken);
        }
        catch
        {
            Volatile.Write(ref _waiting, 0);
            throw;
        }

        if (read.IsCompletedSuccessfully)
        {
            try
            {
                return new ValueTask<ReadResult>(Inspect(read.Result));
            }
            finally
            {
                Volatile.Write(ref _waiting, 0);
            }
        }

        _pending.Reset();
        _innerRead = read.ConfigureAwait(false).GetAwaiter();
        _innerRead.UnsafeOnCompleted(_innerReadCompleted ??= OnInnerReadCompleted);
        return new ValueTask<ReadResult>(this, _pending.Version);
    }

    public override bool TryRead(out ReadResult result)
    {
        // Claimed as ReadAsync claims it: while a read waits, the pipe may already hold the bytes it has
        // not been handed, and a TryRead passed on took them, and the waiting read then failed.
        if (Interlocked.CompareExchange(ref _waiting, 1, 0) != 0)
        {
            throw new InvalidOperationException("Concurrent reads are not supported: a read of this input is already waiting.");
        }

        _handedOurs = false;
        try
        {
            if (!inner.TryRead(out result))
            {
                return false;
            }

            result = Inspect(result);
            return true;
        }
        finally
        {
            Volatile.Write(ref _waiting, 0);
        }
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (_handedOurs)
        {
            // The positions are the empty sequence's, not the pipe's, whose read was given back already.
            _handedOurs = false;
            return;
        }

        // The common AdvanceTo(buffer.End) examines nothing beyond what it consumes: no slicing.
        _examined = _lastBuffer.IsEmpty || consumed.Equals(examined)
            ? 0
            : _lastBuffer.Slice(consumed).Length - _lastBuffer.Slice(examined).Length;
        _lastBuffer = default;
        inner.AdvanceTo(consumed, examined);
        LeaveCall();
    }

    public override void CancelPendingRead() => inner.CancelPendingRead();

    /// <summary>
    /// What the application completed the input with, if it gave an exception: the inbound loop's next
    /// flush throws it, and it is the application's failure, not one of the connection's.
    /// </summary>
    public Exception? CompletedWith => Volatile.Read(ref _completedWith);

    public override void Complete(Exception? exception = null)
    {
        Volatile.Write(ref _completedWith, exception);
        _call.MarkCompleted();
        inner.Complete(exception);
    }

    /// <summary>
    /// Disposal's completion, from another thread: now if the application holds no buffer of a read
    /// (a read still waiting then returns completed and empty), else once its AdvanceTo gives the
    /// buffer back (see <see cref="ApplicationCallGate"/>).
    /// </summary>
    public void CompleteFromDisposal()
    {
        if (_call.TryCompleteNow())
        {
            inner.Complete();
        }
    }

    private void LeaveCall()
    {
        if (_call.Leave())
        {
            inner.Complete();
        }
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _pending.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _pending.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _pending.OnCompleted(continuation, state, token, flags);

    private void OnInnerReadCompleted()
    {
        ReadResult result;
        try
        {
            result = Inspect(_innerRead.GetResult());
        }
        catch (Exception ex)
        {
            HandOver();
            _pending.SetException(ex);
            return;
        }

        HandOver();
        _pending.SetResult(result);
    }

    /// <summary>
    /// Lets the next read start: after the pipe's read has been claimed (GetResult) and inspected, and
    /// before the result is out (the application may read again as soon as it has it). Released
    /// before GetResult, a second read landing in between went to the pipe, which takes a read as
    /// begun only at GetResult: it got the bytes, and the first read, the one that kept the rule,
    /// failed ("Reading is already in progress").
    /// </summary>
    private void HandOver()
    {
        _innerRead = default;
        Volatile.Write(ref _waiting, 0);
    }

    private ReadResult Inspect(ReadResult result)
    {
        // The application holds the buffer from here to its AdvanceTo. A read that was waiting when
        // disposal completed the reader gets no buffer: its memory is about to go back to the pool.
        if (!_call.TryEnter())
        {
            // Disposal closed the gate and is completing the pipe: the pipe's read is given back here,
            // and the application's AdvanceTo for this result is taken without passing it on (passed
            // on, the empty sequence's positions made the pipe throw InvalidCastException).
            try
            {
                inner.AdvanceTo(result.Buffer.Start);
            }
            catch (InvalidOperationException)
            {
                // Completed meanwhile: nothing left to give back.
            }

            _handedOurs = true;
            return new ReadResult(ReadOnlySequence<byte>.Empty, isCanceled: false, isCompleted: true);
        }

        if (result.IsCanceled)
        {
            // A read CancelPendingRead ended is not one the application holds: a Pipe lets its reader read
            // again or complete without AdvanceTo, and PipeReader.AsStream() never advances after one. Kept
            // open until an AdvanceTo that never came, it kept disposal from completing the input: its
            // plaintext blocks were neither zeroed nor pooled until the collector found them. So the pipe's
            // read is given back now, nothing consumed and no more examined than before (the next read
            // still waits for new bytes, or returns those that came meanwhile), and the application gets
            // an empty buffer: handed the pipe's, it could be reading it as disposal zeroes it. So too a read both
            // cancelled and completed (a cancellation asked for once the input had ended), which held the last
            // bytes the same way: its end is not reported here, where its bytes are not, but by the next read, with them.
            inner.AdvanceTo(result.Buffer.Start, result.Buffer.GetPosition(Math.Min(_examined, result.Buffer.Length)));
            LeaveCall();
            _handedOurs = true;
            return new ReadResult(ReadOnlySequence<byte>.Empty, isCanceled: true, isCompleted: false);
        }

        if (!result.IsCompleted || _failure is null)
        {
            _lastBuffer = result.Buffer;
            return result;
        }

        if (result.Buffer.Length > _examined)
        {
            _lastBuffer = result.Buffer;
            return new ReadResult(result.Buffer, result.IsCanceled, isCompleted: false);
        }

        // Everything before the failure has been seen: report it, leaving the reader ready for another read.
        inner.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        LeaveCall();
        _failure.Throw();
        return default;
    }
}
