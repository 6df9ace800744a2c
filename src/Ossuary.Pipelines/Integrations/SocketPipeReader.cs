using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// The client's transport input, straight over its <see cref="Socket"/>: an idle connection waits in a
/// zero-byte receive and holds no buffer; one is rented (64 KiB, the shared pool: ciphertext) when data is
/// there, and returned once everything read has been consumed. What <c>PipeReader.Create</c> over a
/// <see cref="NetworkStream"/> did, without the stream, the reader's segments and its cancellation token
/// source, which every idle connection held (about 860 B a pair with the writer's).
/// </summary>
/// <remarks>
/// A read that is cancelled (<see cref="CancelPendingRead"/>, its token) returns at once and leaves the
/// socket's receive in flight: the next read waits for that receive instead of starting another, so
/// nothing is cancelled inside the socket layer (no exception thrown and caught). Failures read as they
/// did through the stream: an <see cref="IOException"/> around the <see cref="SocketException"/>.
/// <para>
/// Off Linux, where stopping the socket's receiving need not end a receive, a read cancelled as the
/// connection ends leaves its receive pending until the socket closes. That stays correct, if not tidy: a
/// zero-byte receive (an idle connection's) consumes nothing and holds no buffer, so the linger's own
/// receives, queued behind it, lose no byte; the reader completed meanwhile keeps no read waiting, so the
/// receive's end, the socket's close (an abort), completes nothing and starts no other (see Received).
/// One into the buffer keeps it until then, and what it takes is what the linger would discard.
/// </para>
/// </remarks>
internal sealed class SocketPipeReader(Socket socket, object gate) : PipeReader, IValueTaskSource<ReadResult>
{
    private const int BufferSize = 64 * 1024;

    // Below this much room at the buffer's end, the unconsumed bytes move to its start first, so that one
    // receive takes at least this much (a partial packet never spans two buffers: nothing to copy to open it).
    private const int MinimumReadSize = 16 * 1024;

    private byte[]? _buffer;
    private int _start;
    private int _end;
    private int _examined;

    // A receive the socket has not completed yet (zero-byte while _buffer is null), and what it is.
    private bool _receiving;
    private bool _zeroByte;
    private bool _dataReady;
    private ValueTask<int> _receive;
    private Action? _onReceived;

    // Made only when the socket is to close under a receive in flight (see ReceiveEndedAsync).
    private TaskCompletionSource? _receiveEnded;

    // The read waiting for bytes, how many it wants (0: any not yet examined), and its token's registration.
    private bool _waiting;
    private int _minimum;
    private CancellationTokenRegistration _registration;
    private ManualResetValueTaskSourceCore<ReadResult> _source;

    private bool _cancelRequested;
    private bool _ended;
    private Exception? _failure;
    private bool _completed;

    /// <inheritdoc />
    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) => Read(0, cancellationToken);

    /// <inheritdoc />
    protected override ValueTask<ReadResult> ReadAtLeastAsyncCore(int minimumSize, CancellationToken cancellationToken) => Read(minimumSize, cancellationToken);

    private ValueTask<ReadResult> Read(int minimum, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ReadResult>(cancellationToken);
        }

        short version;
        lock (gate)
        {
            ThrowIfCompleted();
            if (_waiting)
            {
                throw new InvalidOperationException("A read is already pending on the transport.");
            }

            if (TryTake(minimum, out ReadResult ready, out Exception? failure))
            {
                return failure is null ? new ValueTask<ReadResult>(ready) : ValueTask.FromException<ReadResult>(failure);
            }

            _waiting = true;
            _minimum = minimum;
            _source.Reset();
            version = _source.Version;
            if (cancellationToken.CanBeCanceled)
            {
                // Only the handshake's reads carry a token; the inbound loop's, one a packet, do not. Registered
                // under the lock, so that a cancellation from another thread cannot complete this read before it is.
                _registration = cancellationToken.UnsafeRegister(static (state, token) => ((SocketPipeReader)state!).EndWaiting(token), this);
            }
        }

        Pump();
        return new ValueTask<ReadResult>(this, version);
    }

    /// <summary>What a read gets now, if anything: a cancellation asked for, enough bytes, the end or the failure.</summary>
    private bool TryTake(int minimum, out ReadResult result, out Exception? failure)
    {
        failure = null;
        int available = _end - _start;
        if (_cancelRequested)
        {
            _cancelRequested = false;
            result = new ReadResult(Buffered(), isCanceled: true, isCompleted: _ended);
            return true;
        }

        if (minimum > 0 ? available >= minimum : _end > _examined)
        {
            result = new ReadResult(Buffered(), isCanceled: false, isCompleted: _ended);
            return true;
        }

        if (_ended)
        {
            result = new ReadResult(Buffered(), isCanceled: false, isCompleted: true);
            return true;
        }

        result = default;
        if (_failure is not null)
        {
            failure = _failure;
            return true;
        }

        return false;
    }

    private ReadOnlySequence<byte> Buffered() =>
        _buffer is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(_buffer, _start, _end - _start);

    /// <summary>Receives while a read waits for more than is here, and completes it once it has what it wants.</summary>
    private void Pump()
    {
        while (true)
        {
            ReadResult ready;
            Exception? failure;
            Memory<byte> into = default;
            bool receiving = true;
            lock (gate)
            {
                if (!_waiting || _receiving)
                {
                    return; // nobody to feed, or the receive in flight calls back
                }

                if (TryTake(_minimum, out ready, out failure))
                {
                    _waiting = false;
                    receiving = false;
                }
                else if (_buffer is null && !_dataReady)
                {
                    // Idle, the socket is waited on with no buffer; once it has data, a buffer is rented for it.
                    _zeroByte = true;
                    _receiving = true;
                }
                else
                {
                    _dataReady = false;
                    _zeroByte = false;
                    _receiving = true;
                    into = Room(_minimum);
                }
            }

            if (!receiving)
            {
                Complete(ready, failure, inline: true);
                return; // its continuation may have read again, and pumps for itself
            }

            ValueTask<int> receive;
            try
            {
                receive = socket.ReceiveAsync(into, SocketFlags.None);
            }
            catch (Exception ex)
            {
                receive = ValueTask.FromException<int>(ex);
            }

            if (!receive.IsCompleted)
            {
                _receive = receive;
                receive.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onReceived ??= OnReceived);
                return;
            }

            Received(receive);
        }
    }

    private void OnReceived()
    {
        ValueTask<int> receive = _receive;
        _receive = default;
        Received(receive);
        Pump();
    }

    private void Received(ValueTask<int> receive)
    {
        int received = 0;
        Exception? failure = null;
        try
        {
            received = receive.GetAwaiter().GetResult();
        }
        catch (SocketException ex)
        {
            // As NetworkStream says it, which is what the connection's reports expect (a reset is an IOException around it).
            failure = new IOException($"Unable to read data from the transport connection: {ex.Message}.", ex);
        }
        catch (Exception ex)
        {
            failure = ex;
        }

        TaskCompletionSource? ended;
        lock (gate)
        {
            _receiving = false;
            ended = _receiveEnded;
            _receiveEnded = null;
            if (_completed)
            {
                ReturnBuffer();
            }
            else if (failure is not null)
            {
                _failure = failure;
            }
            else if (_zeroByte)
            {
                _dataReady = true; // data, the end or an error: the next receive, into a buffer, says which
            }
            else if (received == 0)
            {
                _ended = true;
            }
            else
            {
                _end += received;
            }
        }

        ended?.TrySetResult();
    }

    /// <summary>
    /// Completes once no receive is in flight: a read that was cancelled leaves its receive to the socket
    /// (see the remarks), and on Unix a socket closed under a receive in flight closes abortively (a reset,
    /// which drops what its kernel has not sent yet, our last frames and Disconnect among them).
    /// </summary>
    public Task ReceiveEndedAsync()
    {
        lock (gate)
        {
            return _receiving ? (_receiveEnded ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task : Task.CompletedTask;
        }
    }

    /// <summary>Where the next receive goes: a buffer with room for at least what the waiting read wants.</summary>
    private Memory<byte> Room(int minimum)
    {
        int unconsumed = _end - _start;
        int wanted = Math.Max(minimum, unconsumed + 1);
        if (_buffer is null || _buffer.Length < wanted)
        {
            byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(BufferSize, wanted));
            if (_buffer is not null)
            {
                _buffer.AsSpan(_start, unconsumed).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(_buffer);
            }

            _buffer = larger;
            Rebase(unconsumed);
        }
        else if (_buffer.Length - _end < Math.Max(MinimumReadSize, minimum - unconsumed) && _start > 0)
        {
            _buffer.AsSpan(_start, unconsumed).CopyTo(_buffer);
            Rebase(unconsumed);
        }

        return _buffer.AsMemory(_end);
    }

    private void Rebase(int unconsumed)
    {
        _examined = Math.Max(0, _examined - _start);
        _start = 0;
        _end = unconsumed;
    }

    private void Complete(ReadResult ready, Exception? failure, bool inline)
    {
        // A receive's completion goes on in the waiting read's continuation, as an awaited stream read did; a
        // cancellation comes from another party's thread (disposal, the handshake's timer), which it must not run on.
        _source.RunContinuationsAsynchronously = !inline;
        // Unregister, not Dispose: this may run inside the token's own callback, which Dispose would wait for.
        _registration.Unregister();
        _registration = default;
        if (failure is null)
        {
            _source.SetResult(ready);
        }
        else
        {
            _source.SetException(failure);
        }
    }

    private void EndWaiting(CancellationToken token)
    {
        lock (gate)
        {
            if (!_waiting)
            {
                return;
            }

            _waiting = false;
        }

        Complete(default, new OperationCanceledException(token), inline: false);
    }

    /// <inheritdoc />
    public override bool TryRead(out ReadResult result)
    {
        lock (gate)
        {
            ThrowIfCompleted();
            if (TryTake(1, out result, out Exception? failure))
            {
                return failure is null ? true : throw failure;
            }

            return false;
        }
    }

    /// <inheritdoc />
    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    /// <inheritdoc />
    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        lock (gate)
        {
            ThrowIfCompleted();
            if (_buffer is null || consumed.GetObject() is null)
            {
                return; // an empty read: nothing to consume
            }

            int consumedAt = Index(consumed);
            int examinedAt = examined.GetObject() is null ? consumedAt : Index(examined);
            if (consumedAt < _start || examinedAt < consumedAt)
            {
                throw new InvalidOperationException("The position is before the transport's unconsumed bytes.");
            }

            _start = consumedAt;
            _examined = examinedAt;
            if (_start == _end && !_receiving)
            {
                // Everything read is consumed: the buffer goes back until the socket has data again.
                ReturnBuffer();
            }
        }
    }

    private int Index(SequencePosition position)
    {
        int index = position.GetInteger();
        if (!ReferenceEquals(position.GetObject(), _buffer) || index > _end)
        {
            throw new InvalidOperationException("The position is not one of the transport's last read.");
        }

        return index;
    }

    private void ReturnBuffer()
    {
        if (_buffer is { } buffer)
        {
            _buffer = null;
            _start = _end = _examined = 0;
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <inheritdoc />
    public override void CancelPendingRead()
    {
        ReadResult cancelled;
        lock (gate)
        {
            if (!_waiting)
            {
                _cancelRequested = true; // the next read returns cancelled, as a pipe's does
                return;
            }

            _waiting = false;
            cancelled = new ReadResult(Buffered(), isCanceled: true, isCompleted: _ended);
        }

        Complete(cancelled, null, inline: false);
    }

    /// <summary>
    /// Completes the reader; a read still waiting (another thread's) ends as any read after completion
    /// does, with <see cref="InvalidOperationException"/>, and the receive in flight, if any, is the last.
    /// </summary>
    public override void Complete(Exception? exception = null)
    {
        bool waiting;
        lock (gate)
        {
            if (_completed)
            {
                return;
            }

            _completed = true;
            waiting = _waiting;
            _waiting = false; // else each receive that ends would start another for it, and none ever completes it
            if (!_receiving || _zeroByte)
            {
                ReturnBuffer(); // else once the receive into it is done
            }
        }

        if (waiting)
        {
            Complete(default, CompletedException(), inline: false);
        }
    }

    private static InvalidOperationException CompletedException() => new("Reading is not allowed after the reader was completed.");

    private void ThrowIfCompleted()
    {
        if (_completed)
        {
            throw CompletedException();
        }
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _source.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _source.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);
}
