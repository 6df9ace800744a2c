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
            if (_readerCompleted)
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
            if (_writerCompleted)
            {
                return;
            }

            Commit();
            _writerCompleted = true;
            _writerHoldsMemory = false;
            if (_readWaiting && TryTakeResult(out ReadResult result, out ExceptionDispatchInfo? failure))
            {
                CompleteWaitingRead(result, failure);
            }

            if (_readerCompleted)
            {
                (free, freeEnd) = TakeChain(null);
            }
        }

        Release(free, freeEnd);
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
        if (_unflushed == 0)
        {
            return;
        }

        _tail!.SetLength(_tailEnd);
        _committedBlock = _tail;
        _committedEnd = _tailEnd;
        _committed += _unflushed;
        long before = _unexamined;
        _unexamined += _unflushed;
        _unflushed = 0;
        if (before < PauseThreshold && _unexamined >= PauseThreshold && !_readerCompleted)
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
        ArgumentOutOfRangeException.ThrowIfNegative(sizeHint);
        lock (Writer)
        {
            if (_writerCompleted)
            {
                throw new InvalidOperationException("Writing is not allowed after writer was completed.");
            }

            int size = Math.Max(sizeHint, 1);
            if (_tail is null || _tail.Array.Length - _tailEnd < size)
            {
                Block block = PlaintextMemoryPool.Instance.RentBlock(Math.Max(sizeHint, MinimumBlockSize));
                if (_tail is null)
                {
                    block.StartChain(_committed);
                    _head = block;
                    _headStart = 0;
                    _committedBlock = block;
                    _committedEnd = 0;
                }
                else
                {
                    _tail.SetLength(_tailEnd);
                    block.StartChain(_tail.RunningIndex + _tailEnd);
                    _tail.Link(block);
                }

                _tail = block;
                _tailEnd = 0;
            }

            _writerHoldsMemory = true;
            return new Memory<byte>(_tail.Array, _tailEnd, _tail.Array.Length - _tailEnd);
        }
    }

    private void Advance(int bytes)
    {
        lock (Writer)
        {
            if (bytes < 0 || (_tail is null ? bytes > 0 : bytes > _tail.Array.Length - _tailEnd))
            {
                throw new ArgumentOutOfRangeException(nameof(bytes));
            }

            _tailEnd += bytes;
            _unflushed += bytes;
            _writerHoldsMemory = false;
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
