using System.IO.Pipelines;
using System.Threading.Tasks.Sources;
using Ossuary.Pipelines.Protocol;
using Block = Ossuary.Pipelines.Transport.PlaintextMemoryPool.Block;

namespace Ossuary.Pipelines.Transport;

/// <summary>The output's buffer, writer side: memory, commits, the pause for room and the writer's completion.</summary>
internal sealed partial class PlaintextOutput : IValueTaskSource<FlushResult>
{
    // Room for four full frames before a flush waits; it goes on once fewer than two are unconsumed.
    private const long PauseThreshold = 4 * OssuarySession.MaxPlaintextLength;
    private const long ResumeThreshold = 2 * OssuarySession.MaxPlaintextLength;

    // The smallest block rented, as a pipe's minimum segment.
    private const int MinimumBlockSize = 4096;

    // The lock of both ends: not this object, which the application holds.
    private readonly object _sync = new();

    private ManualResetValueTaskSourceCore<FlushResult> _flush = new() { RunContinuationsAsynchronously = true };
    private CancellationTokenRegistration _flushCancellation;
    private CancellationToken _flushToken;

    private long _unflushed;
    private bool _writerCompleted;
    private bool _writerHoldsMemory; // from the writer's GetMemory to its Advance
    private bool _writerPaused;
    private bool _flushWaiting;
    private bool _flushCancelPending;

    FlushResult IValueTaskSource<FlushResult>.GetResult(short token) => _flush.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<FlushResult>.GetStatus(short token) => _flush.GetStatus(token);

    void IValueTaskSource<FlushResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _flush.OnCompleted(continuation, state, token, flags);

    private Memory<byte> RentMemory(int sizeHint)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sizeHint);
        lock (_sync)
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

    private void AdvanceBuffer(int bytes)
    {
        lock (_sync)
        {
            if (bytes < 0 || (_tail is null ? bytes > 0 : bytes > _tail.Array.Length - _tailEnd))
            {
                throw new ArgumentOutOfRangeException(nameof(bytes));
            }

            _writerHoldsMemory = false;
            if (_readerCompleted)
            {
                return; // as a pipe whose reader has completed: nothing more is taken, the memory stays the writer's
            }

            _tailEnd += bytes;
            Volatile.Write(ref _unflushed, _unflushed + bytes);
        }
    }

    /// <summary>
    /// Commits what was advanced. Completed at once once the loop has let its end go (or the connection has ended),
    /// cancelled after <see cref="CancelPendingFlush"/>, and waits while four full frames are unconsumed.
    /// </summary>
    private ValueTask<FlushResult> FlushBuffer(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<FlushResult>(cancellationToken); // as a pipe's: nothing committed
        }

        lock (_sync)
        {
            Commit();
            if (_readerCompleted || _connectionEnded)
            {
                return new ValueTask<FlushResult>(Ended);
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

            _flush.Reset();
            _flushWaiting = true;
            if (cancellationToken.CanBeCanceled)
            {
                // Set before registering: a token cancelled meanwhile runs the callback here, on this thread.
                _flushToken = cancellationToken;
                _flushCancellation = cancellationToken.UnsafeRegister(static (state, token) => ((PlaintextOutput)state!).CancelFlush(token), this);
            }

            return new ValueTask<FlushResult>(this, _flush.Version);
        }
    }

    /// <summary>Commits what was advanced without waiting for room.</summary>
    private void CommitBuffer()
    {
        lock (_sync)
        {
            Commit();
        }
    }

    /// <summary>Ends a flush waiting for room with a cancelled result, or, if none waits, the next flush.</summary>
    private void CancelFlush()
    {
        lock (_sync)
        {
            _writerPaused = false;
            if (_flushWaiting)
            {
                ResumeFlush(new FlushResult(isCanceled: true, isCompleted: false));
            }
            else
            {
                _flushCancelPending = true;
            }
        }
    }

    /// <summary>Ends a flush waiting for room as completed: the connection has ended (a later flush sees that itself).</summary>
    private void EndWaitingFlush()
    {
        lock (_sync)
        {
            _writerPaused = false;
            ResumeFlush(Ended);
        }
    }

    private void CancelFlush(CancellationToken token)
    {
        lock (_sync)
        {
            if (_flushWaiting && _flushToken == token)
            {
                _flushWaiting = false;
                _flushCancellation = default;
                _flushToken = default;
                _flush.SetException(new OperationCanceledException(token)); // its bytes stay committed, as a pipe's
            }
        }
    }

    private void ResumeFlush(FlushResult result)
    {
        _writerPaused = false;
        if (_flushWaiting)
        {
            _flushWaiting = false;
            _flushCancellation.Unregister(); // not Dispose: it waits for a callback in flight, which waits for this lock
            _flushCancellation = default;
            _flushToken = default;
            _flush.SetResult(result);
        }
    }

    /// <summary>The application's end is done: what it wrote is committed, and the loop's reads then see the end.</summary>
    private void CompleteBuffer()
    {
        Block? free = null;
        lock (_sync)
        {
            if (_writerCompleted)
            {
                return;
            }

            Commit();
            _writerCompleted = true;
            _writerHoldsMemory = false;
            if (_readWaiting)
            {
                CompleteWaitingRead(TakeResult());
            }

            if (_readerCompleted)
            {
                free = TakeChain();
            }
        }

        Release(free, null);
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
        long before = _committed - _consumed;
        _committed += _unflushed;
        Volatile.Write(ref _unflushed, 0);
        if (before < PauseThreshold && _committed - _consumed >= PauseThreshold && !_readerCompleted)
        {
            _writerPaused = true;
        }

        if (_readWaiting)
        {
            CompleteWaitingRead(TakeResult());
        }
    }
}
