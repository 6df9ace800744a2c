using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;
using Block = Ossuary.Pipelines.Transport.PlaintextMemoryPool.Block;

namespace Ossuary.Pipelines.Transport;

/// <summary>The inbound loop's end of the input: its writes, flushes, pause and completion.</summary>
internal sealed partial class PlaintextInput
{
    /// <summary>
    /// Makes what the inbound loop wrote readable. Returns completed once the application has completed
    /// its input (throwing what it completed it with, if anything), cancelled after <see cref="CancelPendingFlush"/>,
    /// and waits while four full frames are unexamined.
    /// </summary>
    public ValueTask<FlushResult> FlushAsync()
    {
        lock (Writer)
        {
            Commit();
            if (_chain.ReaderCompleted)
            {
                if (_completedWith is { } completedWith)
                {
                    ExceptionDispatchInfo.Throw(completedWith);
                }

                return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: true));
            }

            if (_flushCancelPending)
            {
                _flushCancelPending = false;
                return new ValueTask<FlushResult>(new FlushResult(isCanceled: true, isCompleted: false));
            }

            if (!_writerPaused)
            {
                return default;
            }

            Writer.Flush.Reset();
            _flushWaiting = true;
            return new ValueTask<FlushResult>(Writer, Writer.Flush.Version);
        }
    }

    /// <summary>Ends a flush waiting for room with a cancelled result, or, if none waits, the next flush.</summary>
    public void CancelPendingFlush()
    {
        lock (Writer)
        {
            _writerPaused = false;
            if (_flushWaiting)
            {
                Resume(new FlushResult(isCanceled: true, isCompleted: false));
            }
            else
            {
                _flushCancelPending = true;
            }
        }
    }

    /// <summary>The inbound loop is done: what it wrote is readable, and reads then see the end (or the parked failure).</summary>
    public void CompleteWriter()
    {
        Block? free = null;
        Block? freeEnd = null;
        lock (Writer)
        {
            if (_chain.WriterCompleted)
            {
                return;
            }

            Commit();
            _chain.CompleteWriter();
            if (_readWaiting && TryTakeResult(out ReadResult result, out ExceptionDispatchInfo? failure))
            {
                CompleteWaitingRead(result, failure);
            }

            if (_chain.ReaderCompleted)
            {
                (free, freeEnd) = TakeChain(null);
            }
        }

        PlaintextBlockChain.Release(free, freeEnd);
    }

    private void Resume(FlushResult result)
    {
        _writerPaused = false;
        if (_flushWaiting)
        {
            _flushWaiting = false;
            Writer.Flush.SetResult(result);
        }
    }

    private void Commit()
    {
        long committed = _chain.Commit();
        if (committed == 0)
        {
            return;
        }

        long before = _unexamined;
        _unexamined += committed;
        if (before < PauseThreshold && _unexamined >= PauseThreshold && !_chain.ReaderCompleted)
        {
            _writerPaused = true;
        }

        if (_readWaiting && TryTakeResult(out ReadResult result, out ExceptionDispatchInfo? failure))
        {
            CompleteWaitingRead(result, failure);
        }
    }

    private Memory<byte> GetMemory(int sizeHint)
    {
        lock (Writer)
        {
            return _chain.Rent(sizeHint);
        }
    }

    private void Advance(int bytes)
    {
        lock (Writer)
        {
            _chain.Advance(bytes);
        }
    }

    /// <summary>The inbound loop's end of the input: the session opens frames into it; it is also the input's lock.</summary>
    internal sealed class InboundWriter(PlaintextInput input) : IBufferWriter<byte>, IValueTaskSource<FlushResult>
    {
        /// <summary>A flush waiting for room completes through this.</summary>
        public ManualResetValueTaskSourceCore<FlushResult> Flush = new() { RunContinuationsAsynchronously = true };

        public void Advance(int count) => input.Advance(count);

        public Memory<byte> GetMemory(int sizeHint = 0) => input.GetMemory(sizeHint);

        public Span<byte> GetSpan(int sizeHint = 0) => input.GetMemory(sizeHint).Span;

        FlushResult IValueTaskSource<FlushResult>.GetResult(short token) => Flush.GetResult(token);

        ValueTaskSourceStatus IValueTaskSource<FlushResult>.GetStatus(short token) => Flush.GetStatus(token);

        void IValueTaskSource<FlushResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            Flush.OnCompleted(continuation, state, token, flags);
    }
}
