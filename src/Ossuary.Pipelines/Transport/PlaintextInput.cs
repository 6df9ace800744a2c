using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;
using Ossuary.Pipelines.Protocol;
using Block = Ossuary.Pipelines.Transport.PlaintextMemoryPool.Block;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// The plaintext input: the reader the application sees and, through <see cref="Writer"/>, the inbound
/// loop's end, in one object with no pipe behind it. It holds pooled plaintext blocks
/// (<see cref="PlaintextMemoryPool"/>, each its own sequence segment) only while bytes are buffered, so an
/// idle input is this object and its writer (a <see cref="Pipe"/> and the reader that wrapped it held six
/// objects, 750 B a side, whatever it buffered).
/// </summary>
/// <remarks>
/// <para>
/// The reader keeps <see cref="Pipe"/>'s contract (one read at a time, <c>AdvanceTo</c> with its examined
/// position deciding whether the next read waits, <see cref="CancelPendingRead"/>, a token that cancels a
/// waiting read, the writer paused at four full frames unexamined and resumed under two), and adds:
/// </para>
/// <para>
/// A failure that ends the input (<see cref="Fail"/>) is reported only after every byte that arrived before it.
/// The inbound loop flushes the frames of one transport read and then, if that same read also held the
/// transport's end (no Disconnect) or a forged frame, fails the input; thrown at once, the application lost
/// the authentic bytes of the earlier frames, e.g. the last message of a peer that closes without Disconnect.
/// Until the application has examined all the data, reads return it with <see cref="ReadResult.IsCompleted"/>
/// false (a completed result would read as a clean end); after that, every read throws.
/// </para>
/// <para>
/// A read that <see cref="CancelPendingRead"/> ended returns an empty buffer, not completed even once the input
/// has ended: its bytes (and the end) stay for the next read, and the application holds nothing that disposal
/// must wait for. Disposal
/// (<see cref="CompleteFromDisposal"/>) completes the reader now if the application holds no buffer of a
/// read (a read still waiting returns completed and empty), else at its <c>AdvanceTo</c>: completed under
/// the read, the buffer went back to the pool, where another connection's plaintext goes next.
/// </para>
/// <para>
/// Both ends take one lock (the writer object, which the application never sees): one reader and one
/// writer, each call a few field updates. Waiting reads and flushes complete through reusable sources
/// that run their continuations on the thread pool, never inline under the lock or on the other end's
/// thread, and allocate nothing: an async method's box is queued as it is.
/// </para>
/// </remarks>
internal sealed partial class PlaintextInput : PipeReader, IValueTaskSource<ReadResult>
{
    // Room for four full frames before the inbound loop waits; it goes on once fewer than two are unexamined.
    private const long PauseThreshold = 4 * OssuarySession.MaxPlaintextLength;
    private const long ResumeThreshold = 2 * OssuarySession.MaxPlaintextLength;

    private ManualResetValueTaskSourceCore<ReadResult> _read = new() { RunContinuationsAsynchronously = true };
    private CancellationTokenRegistration _readCancellation;
    private CancellationToken _readToken;

    // The blocks, flushed (committed) and not, and the positions consumed and committed in them.
    private PlaintextBlockChain _chain;

    // Counted from the input's first byte, as the chain's positions are.
    private long _examined;

    // Flushed bytes the application has not examined: what pauses the writer, as a pipe counts it.
    private long _unexamined;

    private ExceptionDispatchInfo? _failure;
    private Exception? _completedWith;

    private bool _readWaiting;       // a ReadAsync is pending on _read
    private bool _reading;           // the application holds a read's buffer until its AdvanceTo
    private bool _readCancelPending; // CancelPendingRead with no read waiting: the next read returns cancelled
    private bool _handedOurs;        // a read got an empty result of ours: its AdvanceTo, if one comes, is ours to take
    private bool _completeAfterRead; // disposal waits for the application's AdvanceTo
    private bool _writerPaused;
    private bool _flushWaiting;
    private bool _flushCancelPending;

    public PlaintextInput() => Writer = new InboundWriter(this);

    /// <summary>The inbound loop's end: where frames are opened, and the lock of both ends.</summary>
    public InboundWriter Writer { get; }

    /// <summary>
    /// What the application completed the input with, if it gave an exception: the inbound loop's next
    /// flush throws it, and it is the application's failure, not one of the connection's.
    /// </summary>
    public Exception? CompletedWith => Volatile.Read(ref _completedWith);

    /// <summary>Whether the application has completed the input (or disposal has, or will once the application's read returns its buffer).</summary>
    public bool ReaderCompleted
    {
        get
        {
            lock (Writer)
            {
                return _chain.ReaderCompleted || _completeAfterRead;
            }
        }
    }

    /// <summary>Written bytes not flushed yet (the inbound loop's own count: only it writes).</summary>
    public long UnflushedBytes => _chain.Unflushed;

    /// <summary>Parks the failure; call before <see cref="CompleteWriter"/> (whose completion publishes it).</summary>
    public void Fail(Exception failure)
    {
        lock (Writer)
        {
            _failure = ExceptionDispatchInfo.Capture(failure);
        }
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        lock (Writer)
        {
            ThrowIfNotReadable();
            if (cancellationToken.IsCancellationRequested)
            {
                return ValueTask.FromCanceled<ReadResult>(cancellationToken);
            }

            if (TryTakeResult(out ReadResult result, out ExceptionDispatchInfo? failure))
            {
                failure?.Throw();
                return new ValueTask<ReadResult>(result);
            }

            _read.Reset();
            _readWaiting = true;
            if (cancellationToken.CanBeCanceled)
            {
                // Set before registering: a token cancelled meanwhile runs the callback here, on this thread.
                _readToken = cancellationToken;
                _readCancellation = cancellationToken.UnsafeRegister(static (state, token) => ((PlaintextInput)state!).CancelRead(token), this);
            }

            return new ValueTask<ReadResult>(this, _read.Version);
        }
    }

    public override bool TryRead(out ReadResult result)
    {
        lock (Writer)
        {
            ThrowIfNotReadable();
            if (!TryTakeResult(out result, out ExceptionDispatchInfo? failure))
            {
                return false;
            }

            failure?.Throw();
            return true;
        }
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        Block? free;
        Block? freeEnd;
        lock (Writer)
        {
            if (_handedOurs)
            {
                // The positions are the empty sequence's: nothing was handed that could be consumed.
                _handedOurs = false;
                return;
            }

            if (!_reading)
            {
                throw new InvalidOperationException(_chain.ReaderCompleted
                    ? "Reading is not allowed after reader was completed."
                    : "No reading operation to complete.");
            }

            long consumedAt = _chain.PositionOf(consumed);
            long examinedAt = _chain.PositionOf(examined);
            if (examinedAt < consumedAt)
            {
                throw new InvalidOperationException("The examined position must be greater than or equal to the consumed position.");
            }

            if (examinedAt < _examined)
            {
                throw new InvalidOperationException("The examined position cannot be less than the previously examined position.");
            }

            if (consumedAt < _chain.Consumed || examinedAt > _chain.Committed)
            {
                throw new InvalidOperationException("The position is not within the buffer of the last read.");
            }

            long before = _unexamined;
            _unexamined -= examinedAt - _examined;
            _examined = examinedAt;
            (free, freeEnd) = _chain.Consume(consumed, consumedAt); // a chain this empties was all examined: _unexamined is 0
            _reading = false;
            if (before >= ResumeThreshold && _unexamined < ResumeThreshold)
            {
                Resume(new FlushResult(isCanceled: false, isCompleted: false));
            }

            if (_completeAfterRead)
            {
                _completeAfterRead = false;
                if (CompleteReaderLocked(null))
                {
                    (free, freeEnd) = TakeChain(free);
                }
            }
        }

        PlaintextBlockChain.Release(free, freeEnd);
    }

    public override void Complete(Exception? exception = null)
    {
        Block? free = null;
        Block? freeEnd = null;
        lock (Writer)
        {
            if (_chain.ReaderCompleted)
            {
                return;
            }

            Volatile.Write(ref _completedWith, exception);
            _reading = false;
            _completeAfterRead = false;
            if (CompleteReaderLocked(exception))
            {
                (free, freeEnd) = TakeChain(null);
            }
        }

        PlaintextBlockChain.Release(free, freeEnd);
    }

    /// <summary>
    /// Disposal's completion, from another thread: now if the application holds no buffer of a read
    /// (a read still waiting then returns completed and empty), else once its AdvanceTo gives the buffer back.
    /// </summary>
    public void CompleteFromDisposal()
    {
        Block? free = null;
        Block? freeEnd = null;
        lock (Writer)
        {
            if (_chain.ReaderCompleted || _completeAfterRead)
            {
                return;
            }

            if (_reading)
            {
                _completeAfterRead = true;
                return;
            }

            if (_readWaiting)
            {
                _handedOurs = true;
                CompleteWaitingRead(new ReadResult(ReadOnlySequence<byte>.Empty, isCanceled: false, isCompleted: true), null);
            }

            if (CompleteReaderLocked(null))
            {
                (free, freeEnd) = TakeChain(null);
            }
        }

        PlaintextBlockChain.Release(free, freeEnd);
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _read.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _read.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _read.OnCompleted(continuation, state, token, flags);

    private void ThrowIfNotReadable()
    {
        if (_readWaiting)
        {
            throw new InvalidOperationException("Concurrent reads are not supported: a read of this input is already waiting.");
        }

        if (_chain.ReaderCompleted)
        {
            throw new InvalidOperationException("Reading is not allowed after reader was completed.");
        }

        if (_reading)
        {
            throw new InvalidOperationException("Reading is already in progress.");
        }

        _handedOurs = false; // a cancelled read's AdvanceTo that never came
    }

    /// <summary>The result a read gets now, if it need not wait; a failure to throw once the application has seen every byte before it.</summary>
    private bool TryTakeResult(out ReadResult result, out ExceptionDispatchInfo? failure)
    {
        failure = null;
        bool canceled = _readCancelPending;
        _readCancelPending = false;
        if (canceled)
        {
            // Given back as it is, nothing consumed or examined, whether or not the input has ended: a read both
            // cancelled and completed (the cancellation asked for once the peer's Disconnect had ended the input)
            // held the last bytes' buffer, and an application that never advances after a cancelled read
            // (PipeReader.AsStream() throws OperationCanceledException) kept disposal from completing the input,
            // its block neither zeroed nor pooled. The end is reported by the next read, with the bytes.
            _handedOurs = true;
            result = new ReadResult(ReadOnlySequence<byte>.Empty, isCanceled: true, isCompleted: false);
            return true;
        }

        bool unseen = _chain.Committed > _examined;
        if (!unseen && !_chain.WriterCompleted)
        {
            result = default;
            return false;
        }

        ReadOnlySequence<byte> buffer = _chain.Readable;
        if (_chain.WriterCompleted && _failure is not null && !unseen)
        {
            // Everything before the failure has been seen: report it, leaving the reader ready for another read.
            failure = _failure;
            result = default;
            return true;
        }

        _reading = true;
        result = new ReadResult(buffer, isCanceled: false, isCompleted: _chain.WriterCompleted && _failure is null);
        return true;
    }

    private void CompleteWaitingRead(ReadResult result, ExceptionDispatchInfo? failure)
    {
        _readWaiting = false;
        _readCancellation.Unregister(); // not Dispose: it waits for a callback in flight, which waits for this lock
        _readCancellation = default;
        _readToken = default;
        if (failure is not null)
        {
            _read.SetException(failure.SourceException);
        }
        else
        {
            _read.SetResult(result);
        }
    }

    /// <summary>Marks the reader completed; true if the writer is too, and the blocks can go.</summary>
    private bool CompleteReaderLocked(Exception? exception)
    {
        _chain.CompleteReader();
        _writerPaused = false;
        if (_flushWaiting)
        {
            _flushWaiting = false;
            if (exception is not null)
            {
                Writer.Flush.SetException(exception);
            }
            else
            {
                Writer.Flush.SetResult(new FlushResult(isCanceled: false, isCompleted: true));
            }
        }

        return _chain.WriterCompleted;
    }

    /// <summary>Unlinks the whole chain (both ends done); returns it from <paramref name="from"/> or its head.</summary>
    private (Block? Free, Block? End) TakeChain(Block? from)
    {
        Block? head = _chain.TakeChain();
        _examined = _chain.Committed;
        _unexamined = 0;
        return (from ?? head, null);
    }
}
