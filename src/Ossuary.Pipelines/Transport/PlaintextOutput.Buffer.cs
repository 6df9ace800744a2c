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

    // The lock of both ends: not this object, which the application holds.
    private readonly object _sync = new();

    private ManualResetValueTaskSourceCore<FlushResult> _flush = new() { RunContinuationsAsynchronously = true };
    private CancellationTokenRegistration _flushCancellation;
    private CancellationToken _flushToken;

    // The blocks, committed and not, and the positions consumed and committed in them.
    private PlaintextBlockChain _chain;

    private bool _writerPaused;
    private bool _flushWaiting;
    private bool _flushCancelPending;

    FlushResult IValueTaskSource<FlushResult>.GetResult(short token) => _flush.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<FlushResult>.GetStatus(short token) => _flush.GetStatus(token);

    void IValueTaskSource<FlushResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _flush.OnCompleted(continuation, state, token, flags);

    private Memory<byte> RentMemory(int sizeHint)
    {
        lock (_sync)
        {
            return _chain.Rent(sizeHint);
        }
    }

    private void AdvanceBuffer(int bytes)
    {
        lock (_sync)
        {
            if (_chain.ReaderCompleted)
            {
                _chain.Drop(bytes); // as a pipe whose reader has completed: nothing more is taken, the memory stays the writer's
                return;
            }

            _chain.Advance(bytes);
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
            if (_chain.ReaderCompleted || _connectionEnded)
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
            if (_chain.WriterCompleted)
            {
                return;
            }

            Commit();
            _chain.CompleteWriter();
            if (_readWaiting)
            {
                CompleteWaitingRead(TakeResult());
            }

            if (_chain.ReaderCompleted)
            {
                free = _chain.TakeChain();
            }
        }

        PlaintextBlockChain.Release(free, null);
    }

    private void Commit()
    {
        long before = _chain.Unconsumed;
        if (_chain.Commit() == 0)
        {
            return;
        }

        if (before < PauseThreshold && _chain.Unconsumed >= PauseThreshold && !_chain.ReaderCompleted)
        {
            _writerPaused = true;
        }

        if (_readWaiting)
        {
            CompleteWaitingRead(TakeResult());
        }
    }
}
