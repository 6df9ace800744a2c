using System.IO.Pipelines;
using System.Threading.Tasks.Sources;
using Block = Ossuary.Pipelines.Transport.PlaintextMemoryPool.Block;

namespace Ossuary.Pipelines.Transport;

/// <summary>The output's buffer, the outbound loop's side: one reader, which always consumes what it examined.</summary>
internal sealed partial class PlaintextOutput : IValueTaskSource<ReadResult>
{
    private ManualResetValueTaskSourceCore<ReadResult> _read = new() { RunContinuationsAsynchronously = true };

    private bool _readWaiting;       // a read is pending on _read
    private bool _readCancelPending; // CancelOutboundRead with no read waiting: the next read returns cancelled

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _read.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _read.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _read.OnCompleted(continuation, state, token, flags);

    /// <summary>
    /// The outbound loop's read: everything committed and not consumed, completed once the application's end is
    /// done, cancelled after <see cref="CancelOutboundRead"/>; waits while there is nothing new. Its buffer is the
    /// loop's until <see cref="AdvanceOutboundTo"/>.
    /// </summary>
    public ValueTask<ReadResult> ReadOutboundAsync()
    {
        lock (_sync)
        {
            if (_chain.ReaderCompleted || _readWaiting)
            {
                throw new InvalidOperationException("The outbound loop's read is already waiting, or its end is completed.");
            }

            if (_readCancelPending || _chain.Unconsumed > 0 || _chain.WriterCompleted)
            {
                return new ValueTask<ReadResult>(TakeResult());
            }

            _read.Reset();
            _readWaiting = true;
            return new ValueTask<ReadResult>(this, _read.Version);
        }
    }

    /// <summary>
    /// Consumes up to <paramref name="consumed"/>: blocks wholly consumed are zeroed and pooled, every block once
    /// nothing is left and the application holds no memory, and a flush waiting for room goes on under two frames.
    /// </summary>
    public void AdvanceOutboundTo(SequencePosition consumed)
    {
        Block? free;
        Block? freeEnd;
        lock (_sync)
        {
            long consumedAt = _chain.PositionOf(consumed);
            if (consumedAt < _chain.Consumed || consumedAt > _chain.Committed)
            {
                throw new InvalidOperationException("The position is not within the buffer of the last read.");
            }

            long before = _chain.Unconsumed;
            (free, freeEnd) = _chain.Consume(consumed, consumedAt);
            if (before >= ResumeThreshold && _chain.Unconsumed < ResumeThreshold)
            {
                ResumeFlush(new FlushResult(isCanceled: false, isCompleted: false));
            }
        }

        PlaintextBlockChain.Release(free, freeEnd);
    }

    /// <summary>Ends a waiting read of the outbound loop with a cancelled result, or, if none waits, its next read.</summary>
    public void CancelOutboundRead()
    {
        lock (_sync)
        {
            if (_readWaiting)
            {
                _readCancelPending = true;
                CompleteWaitingRead(TakeResult());
            }
            else
            {
                _readCancelPending = true;
            }
        }
    }

    /// <summary>
    /// The outbound loop is done: the application's flushes from now on (and one waiting) return completed, and
    /// the blocks go back to the pool now if the application's end is done too, else when it is.
    /// </summary>
    public void CompleteOutboundReader()
    {
        Block? free = null;
        lock (_sync)
        {
            if (_chain.ReaderCompleted)
            {
                return;
            }

            _chain.CompleteReader();
            ResumeFlush(Ended);
            if (_chain.WriterCompleted)
            {
                free = _chain.TakeChain();
            }
        }

        PlaintextBlockChain.Release(free, null);
    }

    /// <summary>The result a read gets now: everything committed, cancelled if asked for, completed once the writer is done.</summary>
    private ReadResult TakeResult()
    {
        bool canceled = _readCancelPending;
        _readCancelPending = false;
        return new ReadResult(_chain.Readable, canceled, _chain.WriterCompleted);
    }

    private void CompleteWaitingRead(ReadResult result)
    {
        _readWaiting = false;
        _read.SetResult(result);
    }
}
