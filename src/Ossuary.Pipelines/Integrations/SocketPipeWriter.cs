using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// The client's transport output, straight over its <see cref="Socket"/>: frames are sealed into one
/// pooled 128 KiB buffer (the shared pool: ciphertext), which a flush sends in one socket write and
/// returns, so an idle connection holds none. What <c>PipeWriter.Create</c> over a
/// <see cref="NetworkStream"/> did, without the stream, the writer's segments and its token source.
/// </summary>
/// <remarks>
/// A flush that is cancelled (<see cref="CancelPendingFlush"/>, its token) returns at once and leaves
/// the socket's send in flight; the buffer goes back to the pool when that send ends (the socket's close
/// ends it). The writer stays usable, as the stream's was: the next flush waits for that send, then sends
/// what was written since, so the peer gets every byte once and in order; if that send failed, the next
/// flush and every one after fail with its error, as a failed socket's next write did. Failures read as
/// they did through the stream: an <see cref="IOException"/> around the <see cref="SocketException"/>.
/// </remarks>
internal sealed class SocketPipeWriter(Socket socket, object gate) : PipeWriter, IValueTaskSource<FlushResult>
{
    // A batch of sealed frames (an application that flushes faster than the socket drains has up to
    // 64 KiB queued) leaves in one socket write; a 32 KiB buffer held one full frame, so each frame was its own write.
    private const int BufferSize = 128 * 1024;

    private byte[]? _buffer;
    private int _written;

    // The flush in progress: the buffer it sends (detached from _buffer), how much of it has gone, the send.
    private byte[]? _sending;
    private int _sendingLength;
    private int _sent;
    private ValueTask<int> _send;
    private Action? _onSent;

    // How the send of a flush given up on failed: nobody waited to be told, so every later flush is.
    private Exception? _sendFailure;

    private bool _flushWaiting;
    private CancellationTokenRegistration _registration;
    private ManualResetValueTaskSourceCore<FlushResult> _source;

    private bool _cancelRequested;
    private bool _completed;

    /// <inheritdoc />
    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        ThrowIfCompleted();
        ArgumentOutOfRangeException.ThrowIfNegative(sizeHint);
        int wanted = Math.Max(sizeHint, 1);
        if (_buffer is null)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(BufferSize, wanted));
        }
        else if (_buffer.Length - _written < wanted)
        {
            // More than one batch before a flush (not the outbound loop's way): the buffer grows.
            byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _written + wanted));
            _buffer.AsSpan(0, _written).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }

        return _buffer.AsMemory(_written);
    }

    /// <inheritdoc />
    public override Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

    /// <inheritdoc />
    public override void Advance(int bytes)
    {
        if (bytes < 0 || _buffer is null ? bytes != 0 : bytes > _buffer.Length - _written)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "More bytes than the memory given.");
        }

        _written += bytes;
    }

    /// <inheritdoc />
    public override bool CanGetUnflushedBytes => true;

    /// <inheritdoc />
    public override long UnflushedBytes => _written;

    /// <inheritdoc />
    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<FlushResult>(cancellationToken);
        }

        short version;
        bool sendNow;
        lock (gate)
        {
            ThrowIfCompleted();
            if (_flushWaiting)
            {
                throw new InvalidOperationException("A flush is already pending on the transport.");
            }

            if (_cancelRequested)
            {
                _cancelRequested = false;
                return new ValueTask<FlushResult>(new FlushResult(isCanceled: true, isCompleted: false));
            }

            if (_sendFailure is not null)
            {
                // The send of a flush given up on failed: its bytes, flushed before this, never left.
                return ValueTask.FromException<FlushResult>(_sendFailure);
            }

            if (_written == 0 && _sending is null)
            {
                return new ValueTask<FlushResult>(default(FlushResult));
            }

            // The send of a flush given up on (cancelled) may still be in flight: this flush waits for it and
            // sends its own bytes behind it (see Sent), as a stream's writer sent what its cancelled flush held.
            sendNow = _sending is null;
            if (sendNow)
            {
                TakeBuffer();
            }

            _flushWaiting = true;
            _source.Reset();
            version = _source.Version;
            if (cancellationToken.CanBeCanceled)
            {
                // Only the handshake's flushes carry a token; the outbound loop's do not. Registered under the
                // lock, so that a cancellation from another thread cannot complete this flush before it is.
                _registration = cancellationToken.UnsafeRegister(static (state, token) => ((SocketPipeWriter)state!).EndWaiting(token), this);
            }
        }

        if (sendNow)
        {
            Send();
        }

        return new ValueTask<FlushResult>(this, version);
    }

    /// <summary>Makes what was written the send in progress.</summary>
    private void TakeBuffer()
    {
        _sending = _buffer;
        _sendingLength = _written;
        _sent = 0;
        _buffer = null;
        _written = 0;
    }

    private void Send()
    {
        while (true)
        {
            ValueTask<int> send;
            try
            {
                send = socket.SendAsync(_sending.AsMemory(_sent, _sendingLength - _sent), SocketFlags.None);
            }
            catch (Exception ex)
            {
                send = ValueTask.FromException<int>(ex);
            }

            if (!send.IsCompleted)
            {
                _send = send;
                send.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onSent ??= OnSent);
                return;
            }

            if (!Sent(send))
            {
                return;
            }
        }
    }

    private void OnSent()
    {
        ValueTask<int> send = _send;
        _send = default;
        if (Sent(send))
        {
            Send();
        }
    }

    /// <summary>Takes a send's outcome; true if bytes are left to send for the flush.</summary>
    private bool Sent(ValueTask<int> send)
    {
        Exception? failure = null;
        try
        {
            _sent += send.GetAwaiter().GetResult();
        }
        catch (SocketException ex)
        {
            // As NetworkStream says it, which is what the connection's reports expect.
            failure = new IOException($"Unable to write data to the transport connection: {ex.Message}.", ex);
        }
        catch (Exception ex)
        {
            failure = ex;
        }

        bool waiting;
        lock (gate)
        {
            if (failure is null && _sent < _sendingLength)
            {
                return true;
            }

            ArrayPool<byte>.Shared.Return(_sending!);
            _sending = null;
            waiting = _flushWaiting;
            if (failure is null && waiting && _written > 0 && !_completed)
            {
                // This was the send of a flush given up on, and the flush now waiting wrote behind it: its turn.
                TakeBuffer();
                return true;
            }

            if (failure is not null && !waiting)
            {
                _sendFailure = failure; // a flush given up on: the next one says it
            }

            _flushWaiting = false;
        }

        if (waiting)
        {
            Complete(default, failure, inline: true);
        }

        return false;
    }

    private void Complete(FlushResult result, Exception? failure, bool inline)
    {
        // A send's completion goes on in the waiting flush's continuation, as an awaited stream write did; a
        // cancellation comes from another party's thread (disposal, the handshake's timer), which it must not run on.
        _source.RunContinuationsAsynchronously = !inline;
        _registration.Unregister(); // not Dispose: this may run inside the token's own callback
        _registration = default;
        if (failure is null)
        {
            _source.SetResult(result);
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
            if (!_flushWaiting)
            {
                return;
            }

            _flushWaiting = false;
        }

        Complete(default, new OperationCanceledException(token), inline: false);
    }

    /// <summary>Whether a send is still in flight (one whose flush was cancelled, or one still going).</summary>
    public bool Sending
    {
        get
        {
            lock (gate)
            {
                return _sending is not null;
            }
        }
    }

    /// <inheritdoc />
    public override void CancelPendingFlush()
    {
        lock (gate)
        {
            if (!_flushWaiting)
            {
                _cancelRequested = true; // the next flush returns cancelled, as a pipe's does
                return;
            }

            _flushWaiting = false;
        }

        Complete(new FlushResult(isCanceled: true, isCompleted: false), null, inline: false);
    }

    /// <summary>
    /// Completed cleanly, what is still unflushed is sent first, as a stream's writer did; with an
    /// exception, it is dropped. The socket is not closed: its owner closes it.
    /// </summary>
    public override async ValueTask CompleteAsync(Exception? exception = null)
    {
        try
        {
            if (exception is null && !_completed && _written > 0)
            {
                await FlushAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            MarkCompleted(); // a failed send still completes the writer, and its buffer goes back
        }
    }

    /// <summary>
    /// Completed cleanly, what is still unflushed is sent first, and this waits for it, as a stream's writer
    /// wrote it to the stream synchronously (dropped, the peer saw a clean end without it); a send that fails
    /// throws, the writer completed all the same. With an exception, it is dropped. The socket is not closed.
    /// </summary>
    public override void Complete(Exception? exception = null)
    {
        if (exception is null && !_completed && _written > 0)
        {
            CompleteAsync().AsTask().GetAwaiter().GetResult();
            return;
        }

        MarkCompleted();
    }

    private void MarkCompleted()
    {
        lock (gate)
        {
            if (_completed)
            {
                return;
            }

            _completed = true;
            if (_buffer is { } buffer)
            {
                _buffer = null;
                _written = 0;
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private void ThrowIfCompleted()
    {
        if (_completed)
        {
            throw new InvalidOperationException("Writing is not allowed after the writer was completed.");
        }
    }

    FlushResult IValueTaskSource<FlushResult>.GetResult(short token) => _source.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<FlushResult>.GetStatus(short token) => _source.GetStatus(token);

    void IValueTaskSource<FlushResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);
}
