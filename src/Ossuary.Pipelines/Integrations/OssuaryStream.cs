using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// Ossuary over a <see cref="Stream"/>, for code without pipes: the counterpart of
/// <see cref="System.Net.Security.SslStream"/>. Authenticate first, then read and write plaintext.
/// A write returns once its bytes are queued, and the connection's writer seals and sends them at
/// once (writes made while it is busy share frames); <see cref="FlushAsync(CancellationToken)"/>
/// waits until everything written so far has reached the inner stream. Disposing sends Disconnect.
/// One read and one write may be in progress at once, on two threads, as with SslStream; never two reads or two writes
/// (a second write, or a second read while one waits, is refused with <see cref="InvalidOperationException"/>, and the first goes on).
/// </summary>
/// <remarks>
/// Admission is asynchronous: a client that the server's allow-list refuses still completes
/// <see cref="AuthenticateAsClientAsync(OssuaryClientOptions, CancellationToken)"/> and learns of the refusal from the
/// server's Disconnect (error): the next read, write or flush throws an <see cref="OssuaryException"/>
/// with <see cref="OssuaryErrorReason.ConnectionFailed"/>, the reason a pipe read reports for the same
/// event. A write made before the Disconnect arrived succeeds; the server discards its bytes.
/// Logs, metrics and the handshake span go where the options' <c>LoggerFactory</c> and <c>MeterFactory</c> say.
/// <para>
/// The synchronous members (<see cref="Read(byte[], int, int)"/>, <see cref="Write(byte[], int, int)"/>,
/// <see cref="Flush"/>, <see cref="CopyTo(Stream, int)"/>, <c>Dispose</c>) block the calling thread on the
/// connection's asynchronous work, which runs on the thread pool; <c>SslStream</c>'s read and write the inner
/// stream on the calling thread instead. A pool capped with <c>ThreadPool.SetMaxThreads</c> must keep at least
/// one thread free of such calls: with every pool thread blocked in one (a server reading each client
/// synchronously on a pool thread), none of them could return: a read, write or flush that sees the pool make no
/// progress for 10 s, with every thread it may have busy and work queued, throws <see cref="InvalidOperationException"/>
/// saying so rather than hang (the call is left pending; dispose the stream). One free thread is enough for any number of them.
/// </para>
/// </remarks>
public sealed partial class OssuaryStream : Stream
{
    private readonly Stream _inner;
    private readonly bool _leaveInnerStreamOpen;
    private StreamDuplexPipe? _innerPipe;
    private OssuaryDuplexPipe? _secure;

    // Set by disposal: a disposed stream says so, where it used to ask to be authenticated (again).
    private volatile bool _disposed;

    // 1 while a write is in progress (see EnterWrite).
    private int _writing;

    // The first disposal's work; a disposal racing it (two threads, or Dispose and DisposeAsync) waits for it instead.
    private TaskCompletionSource? _disposal;

    // The handshake under way's token source (the caller's token linked), which disposal cancels: an inner
    // stream left open is not closed under the handshake, which otherwise went on using it after disposal.
    private CancellationTokenSource? _handshakeCancellation;

    /// <summary>Wraps <paramref name="innerStream"/>, which the new stream owns unless <paramref name="leaveInnerStreamOpen"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="innerStream"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="innerStream"/> cannot both read and write (it is one-way, or closed); it is not taken.</exception>
    public OssuaryStream(Stream innerStream, bool leaveInnerStreamOpen = false)
    {
        ArgumentNullException.ThrowIfNull(innerStream);

        // Refused here, as SslStream refuses it: taken, the authentication threw what its docs do not list
        // (the pipes' NotSupportedException), or failed a closed stream's handshake as a fault of this side.
        if (!innerStream.CanRead || !innerStream.CanWrite)
        {
            throw new ArgumentException(
                $"An OssuaryStream needs an inner stream that can both read and write; this {innerStream.GetType().Name} cannot {(innerStream.CanRead ? "write" : innerStream.CanWrite ? "read" : "read or write (is it closed?)")}.",
                nameof(innerStream));
        }

        _inner = innerStream;
        _leaveInnerStreamOpen = leaveInnerStreamOpen;
    }

    /// <summary>What the handshake established; null before authentication, after a failed one, and once the stream is disposed.</summary>
    public IOssuaryConnectionFeature? Connection => _secure?.Feature;

    /// <summary>True once a handshake has succeeded, until the stream is disposed.</summary>
    public bool IsAuthenticated => _secure is not null;

    /// <inheritdoc />
    public override bool CanRead => IsAuthenticated;

    /// <inheritdoc />
    public override bool CanWrite => IsAuthenticated;

    /// <inheritdoc />
    public override bool CanSeek => false;

    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc />
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <summary>Runs the client handshake over the inner stream.</summary>
    /// <exception cref="OssuaryException">The handshake failed; <see cref="OssuaryException.Reason"/> says why.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The stream was disposed, before the handshake or while it ran (the connection it made is closed).</exception>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The options are invalid (the message says what to fix), or this stream has authenticated, or tried to, before: a stream authenticates once.</exception>
    /// <exception cref="FormatException">A key file the options name is malformed; the message names the file.</exception>
    /// <exception cref="IOException">A key file the options name cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">A secret key file the options name may be read by other users (fix with <c>chmod 600</c>), a server's authorized-keys file may be written by them (fix with <c>chmod go-w</c>), either is owned by another user, or a file cannot be opened.</exception>
    public Task AuthenticateAsClientAsync(OssuaryClientOptions options, CancellationToken cancellationToken = default) =>
        AuthenticateAsClientAsync(options, null, cancellationToken);

    /// <summary>
    /// Runs the client handshake over the inner stream, a connection to <paramref name="serverEndPoint"/>
    /// (what <see cref="OssuaryClientOptions.TrustServerAtEndPoint"/> is told; <c>SslStream</c>'s target host).
    /// </summary>
    /// <inheritdoc cref="AuthenticateAsClientAsync(OssuaryClientOptions, CancellationToken)" path="/exception"/>
    public async Task AuthenticateAsClientAsync(OssuaryClientOptions options, EndPoint? serverEndPoint, CancellationToken cancellationToken)
    {
        ThrowIfSpent();

        // Before the stream is claimed: a caller that had already given up spent it (a second call was refused
        // as "already authenticated") for a handshake that never ran.
        cancellationToken.ThrowIfCancellationRequested();
        HandshakePlan plan = HandshakePlan.ForClient(options);
        try
        {
            StreamDuplexPipe pipe = ClaimInnerStream();
            await AuthenticateAsync(pipe, plan.ForEndPoint(serverEndPoint, AddressReached(_inner)), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            plan.ReleaseOwnIdentity(); // the handshake is over: nothing signs again
        }
    }

    /// <summary>Runs the server handshake over the inner stream.</summary>
    /// <remarks>
    /// A client this side turns away (not admitted, or the <see cref="OssuaryServerOptions.IdentitySelector"/>
    /// failed) is told with Disconnect (error); over a socket this stream owns, what the client sends is then
    /// read and discarded until it closes its end, at most 5 s, before this throws: a socket closed with the
    /// client's bytes unread resets, which can drop the Disconnect before the client reads it. A stream
    /// authenticates once: a second call, also after a failed one, is refused before the selector runs.
    /// <see cref="OssuaryServerOptions.MaxPendingHandshakes"/> is checked but not applied: a stream is one connection
    /// its caller accepted, so the bound on handshakes under way belongs to the caller's accept loop.
    /// </remarks>
    /// <inheritdoc cref="AuthenticateAsClientAsync(OssuaryClientOptions, CancellationToken)" path="/exception"/>
    public async Task AuthenticateAsServerAsync(OssuaryServerOptions options, CancellationToken cancellationToken = default)
    {
        ThrowIfSpent();

        // Before the IdentitySelector, the application's code, which ran for a caller that had already given
        // up (only the handshake after it looked at the token); the stream is left untouched and unspent.
        cancellationToken.ThrowIfCancellationRequested();
        HandshakePlan plan = HandshakePlan.ForServer(options, out OssuaryIdentity? generated);
        try
        {
            // Claimed before the IdentitySelector runs: a call that is refused runs none of the application's code
            // (nor counts a failed handshake), and a stream whose selector failed has told its client so and
            // is spent; unclaimed, a second call ran a handshake over a stream that had carried that Disconnect.
            StreamDuplexPipe pipe = ClaimInnerStream();
            HandshakePlan selected;
            ConnectionTelemetry telemetry = ConnectionTelemetry.For(plan);
            long started = plan.TimeProvider.GetTimestamp();
            try
            {
                // Bounded as under UseOssuary and AcceptAsync: a selector that never returns is given up on at the
                // handshake's timeout, or when the caller cancels; inline, it held this call for ever whatever the token said.
                selected = await OssuaryDuplexPipe.SelectIdentityAsync(plan, null, telemetry, started, null, cancellationToken).ConfigureAwait(false);
            }
            catch (OssuaryException ex)
            {
                await TellSelectorFailedAsync(pipe, plan.CloseWait, telemetry).ConfigureAwait(false);
                if (_disposed)
                {
                    // "Dispose to cancel", while the selector ran: said as a disposal during the handshake
                    // is, not as the selector's own failure, which the caller that disposed could not tell apart.
                    throw new ObjectDisposedException("The OssuaryStream was disposed while its IdentitySelector ran.", ex);
                }

                throw;
            }

            await AuthenticateAsync(pipe, selected, cancellationToken, started).ConfigureAwait(false);
        }
        finally
        {
            // This call's own secrets (a key file's copy, an identity generated for it): the handshake is over.
            plan.ReleaseOwnIdentity();
            generated?.Dispose();
        }
    }

    /// <summary>
    /// A server whose <see cref="OssuaryServerOptions.IdentitySelector"/> failed (ours, logged at Error) tells its
    /// client with Disconnect (error), as <c>UseOssuary</c> does, rather than leave it waiting for a ServerHandshake
    /// until its own handshake times out. Best effort, within 1 s; not on a stream disposed meanwhile.
    /// Over a socket this stream owns, the client is then given at most 5 s to close its end, as under <c>UseOssuary</c>:
    /// its ClientHandshake waits unread, and the socket closed under it would reset, which can drop the Disconnect.
    /// </summary>
    private async ValueTask TellSelectorFailedAsync(StreamDuplexPipe pipe, TimeSpan closeWait, ConnectionTelemetry telemetry)
    {
        if (_disposed)
        {
            return;
        }

        var disconnect = new ArrayBufferWriter<byte>(16);
        Protocol.OssuarySession.WriteErrorDisconnect(disconnect);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        try
        {
            await _inner.WriteAsync(disconnect.WrittenMemory, bound.Token).ConfigureAwait(false);
            await _inner.FlushAsync(bound.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or NotSupportedException)
        {
            // The client went away, or reads nothing: the failure thrown to the caller is what matters.
            return;
        }

        // Only over a stream this one owns (the pipe may stop its reading): one left open is its owner's to close.
        await pipe.LingerAfterRefusalAsync(closeWait, telemetry).ConfigureAwait(false);
    }

    /// <summary>
    /// The address the inner stream is connected to, for <see cref="OssuaryServerTrustContext.RemoteEndPoint"/>:
    /// a socket's peer address, else null (unknown). Never the endpoint the caller named, which may be a
    /// host name: a trust callback that pins addresses took a <see cref="DnsEndPoint"/> for one reached.
    /// </summary>
    private static EndPoint? AddressReached(Stream inner)
    {
        try
        {
            return inner is System.Net.Sockets.NetworkStream { Socket: var socket } ? socket.RemoteEndPoint : null;
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            return null; // the peer already reset the connection: the handshake will say so
        }
    }

    /// <summary>
    /// Claims the inner stream for this call's authentication, once for the stream's life: a stream that
    /// has authenticated, or tried to (its handshake or its IdentitySelector failed), refuses another, as
    /// <c>SslStream</c> does. Call before anything touches the inner stream or runs the application's code.
    /// </summary>
    private StreamDuplexPipe ClaimInnerStream()
    {
        ThrowIfSpent();

        // The pipe never disposes the inner stream (this stream does, on its own disposal), but when
        // this stream owns it, its socket may stop receiving as the connection ends.
        // Claimed and published at once, with a full fence: of two calls at once exactly one gets it
        // (a check, then a set, let both through, each running a handshake over the same inner stream),
        // and a disposal under way either finds the pipe (and marks it closed by its owner before it
        // closes the stream) or is seen in AuthenticateAsync.
        var pipe = new StreamDuplexPipe(_inner, leaveOpen: true, mayStopReading: !_leaveInnerStreamOpen);
        if (Interlocked.CompareExchange(ref _innerPipe, pipe, null) is not null)
        {
            throw AlreadyAuthenticated();
        }

        return pipe;
    }

    /// <summary>
    /// Refuses a call on a disposed stream, or one that has authenticated (or tried to), before the options are
    /// read: their key files were read first, so such a call threw a key-file error (or generated and logged a
    /// server identity) instead of saying the stream was disposed or spent. <see cref="ClaimInnerStream"/> still
    /// decides between two calls at once. Not a claim: a call whose own options are invalid leaves the stream unspent.
    /// </summary>
    private void ThrowIfSpent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Volatile.Read(ref _innerPipe) is not null)
        {
            throw AlreadyAuthenticated();
        }
    }

    private static InvalidOperationException AlreadyAuthenticated() =>
        new("This OssuaryStream has already been authenticated (or tried to be): a stream authenticates once.");

    private async Task AuthenticateAsync(StreamDuplexPipe pipe, HandshakePlan plan, CancellationToken cancellationToken, long? started = null)
    {
        // Published with a full fence before disposal is looked for, as the pipe is: a disposal under way
        // either cancels it or is seen here.
        using var handshake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Interlocked.Exchange(ref _handshakeCancellation, handshake);
        ObjectDisposedException.ThrowIf(_disposed, this);
        OssuaryDuplexPipe secure;
        try
        {
            secure = await OssuaryDuplexPipe.StartAsync(pipe, plan, null, ConnectionTelemetry.For(plan), handshake.Token, started).ConfigureAwait(false);
        }
        catch (Exception ex) when (_disposed)
        {
            // Disposed while the handshake ran, which cancelled it and closed the inner stream under it
            // unless that is left open ("dispose to cancel"): what the handshake saw follows from that.
            throw new ObjectDisposedException("The OssuaryStream was disposed during the handshake.", ex);
        }
        catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested && ex.CancellationToken != cancellationToken)
        {
            throw new OperationCanceledException(ex.Message, ex, cancellationToken); // the caller's, which it can recognise
        }
        finally
        {
            Interlocked.CompareExchange(ref _handshakeCancellation, null, handshake);
        }

        Interlocked.Exchange(ref _secure, secure); // a full fence: a disposal under way either takes it or is seen below
        if (_disposed && Interlocked.Exchange(ref _secure, null) is { } orphan)
        {
            // Disposed while the handshake ran, and too early to see the connection: it goes here.
            await orphan.DisposeAsync().ConfigureAwait(false);
            throw new ObjectDisposedException(GetType().FullName, "The OssuaryStream was disposed during the handshake.");
        }
    }

    private OssuaryDuplexPipe Secure
    {
        get
        {
            // The connection first: disposal marks the stream disposed before it takes the connection
            // away, so a connection found gone is either never made or disposed, and then said so.
            OssuaryDuplexPipe? secure = Volatile.Read(ref _secure);
            ObjectDisposedException.ThrowIf(_disposed, this);
            return secure ?? throw NotAuthenticated();
        }
    }

    // A stream whose handshake failed was told to authenticate, which it can no longer do.
    private InvalidOperationException NotAuthenticated() => new(Volatile.Read(ref _innerPipe) is null
        ? "Authenticate the OssuaryStream before reading or writing."
        : "The OssuaryStream is not authenticated: its authentication failed (or has not finished), and a stream authenticates once; dispose it.");

    /// <summary>
    /// Reads decrypted bytes into <paramref name="buffer"/>: what has arrived, up to its length, waiting
    /// for the peer when nothing has. Returns 0 once the peer has closed the connection cleanly (Disconnect).
    /// </summary>
    /// <exception cref="OssuaryException">The connection failed: the peer refused this client or failed
    /// (<see cref="OssuaryErrorReason.ConnectionFailed"/>), reset it, sent a bad record, or the inner stream
    /// ended or failed; <see cref="OssuaryException.Reason"/> says which.</exception>
    /// <exception cref="ObjectDisposedException">The stream was disposed, also while the read waited.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="InvalidOperationException">The stream is not authenticated (its authentication failed or
    /// has not run), or another read is waiting (one read at a time): this one is refused, and the other goes on.</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // reads that wait allocate nothing
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        PipeReader input = Secure.Input;
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
                ReadOnlySequence<byte> available = read.Buffer;
                if (!available.IsEmpty)
                {
                    int count = (int)Math.Min(available.Length, buffer.Length);
                    available.Slice(0, count).CopyTo(buffer.Span);
                    input.AdvanceTo(available.GetPosition(count));
                    return count;
                }

                input.AdvanceTo(available.End);
                if (read.IsCompleted && _disposed)
                {
                    // Disposal ended the read ("dispose to cancel"): not the peer's clean end, which 0 would say.
                    throw new ObjectDisposedException(GetType().FullName, "The OssuaryStream was disposed while the read was pending.");
                }

                if (read.IsCompleted || buffer.IsEmpty)
                {
                    return 0;
                }
            }
        }
        catch (InvalidOperationException) when (_disposed)
        {
            // Disposed under a pending read ("dispose to cancel"): the pipe says "reading is not
            // allowed after reader was completed", which reads as a bug; streams say disposed.
            throw new ObjectDisposedException(GetType().FullName, "The OssuaryStream was disposed while the read was pending.");
        }
    }

    // The array overloads check their arguments as every Stream does (ValidateBufferArguments):
    // AsMemory alone took a null buffer with count 0 as empty and named no parameter when out of range.

    /// <inheritdoc cref="ReadAsync(Memory{byte}, CancellationToken)"/>
    /// <exception cref="ArgumentNullException"><paramref name="buffer"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> and <paramref name="count"/> are not a range of <paramref name="buffer"/>.</exception>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        ValidateBufferArguments(buffer, offset, count);
        return ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    /// <summary>
    /// As <see cref="ReadAsync(byte[], int, int, CancellationToken)"/>, blocking the calling thread while it waits, on work
    /// that needs a free thread-pool thread (see the remarks on <see cref="OssuaryStream"/>).
    /// </summary>
    /// <exception cref="OssuaryException">The connection failed; <see cref="OssuaryException.Reason"/> says why.</exception>
    /// <exception cref="ObjectDisposedException">The stream was disposed, also while the read waited.</exception>
    /// <exception cref="InvalidOperationException">The stream is not authenticated, or another read is waiting, or the thread pool had no free thread to run the read for 10 s (the read is left pending).</exception>
    /// <exception cref="ArgumentNullException"><paramref name="buffer"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> and <paramref name="count"/> are not a range of <paramref name="buffer"/>.</exception>
    public override int Read(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        return PoolBoundWait.Result(ReadAsync(buffer.AsMemory(offset, count)).AsTask(), nameof(Read));
    }

    /// <summary>
    /// Queues <paramref name="buffer"/> to be sealed and sent, and returns once all of it is queued:
    /// a write larger than 64 KiB goes in pieces of that size, each waiting for room in the
    /// connection (a peer that reads slowly) before the next is taken from the buffer.
    /// </summary>
    /// <remarks>
    /// A write cancelled while it waits for room throws <see cref="OperationCanceledException"/>; the
    /// pieces it had queued by then, the start of the buffer, are still sent, and the rest is not, so
    /// what the peer reads after that is undefined, as for any <see cref="Stream"/> (<c>SslStream</c>'s).
    /// </remarks>
    /// <exception cref="OssuaryException">The connection is closed (by the peer, a failure, or this side); what was not queued was not sent.</exception>
    /// <exception cref="ObjectDisposedException">The stream was disposed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="InvalidOperationException">Another write is in progress (one write at a time): this one is refused, sending nothing,
    /// and the other goes on. Thrown through the returned task, as <c>SslStream</c> refuses a second write, not from the call.</exception>
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // Through the task: thrown from the call, the refusal escaped code that starts writes and awaits them
        // together, and BeginWrite (over this) threw instead of calling its callback and failing in EndWrite.
        return TryEnterWrite()
            ? WriteClaimedAsync(buffer, leaveWrite: true, cancellationToken)
            : ValueTask.FromException(WriteInProgress());
    }

    /// <summary>
    /// Claims the stream's one write. A second write at once, which the docs forbid, went on into the
    /// connection's writer under the first, which a pipe does not allow: it went through without a
    /// word, or the pipe failed the first ("Concurrent reads or writes are not supported") while it
    /// waited for room, its rest unsent. Now the second is refused before it touches anything.
    /// </summary>
    private void EnterWrite()
    {
        if (!TryEnterWrite())
        {
            throw WriteInProgress();
        }
    }

    private bool TryEnterWrite() => Interlocked.CompareExchange(ref _writing, 1, 0) == 0;

    private static InvalidOperationException WriteInProgress() => new(
        "Another write is in progress on this OssuaryStream: one write at a time (a read may run alongside it). This write was not sent; the other goes on.");

    private void LeaveWrite() => Volatile.Write(ref _writing, 0);

    /// <summary>The write, once claimed (<see cref="EnterWrite"/>); <paramref name="leaveWrite"/> unless it is one piece of a larger call's.</summary>
    private async ValueTask WriteClaimedAsync(ReadOnlyMemory<byte> buffer, bool leaveWrite, CancellationToken cancellationToken)
    {
        try
        {
            // Once the peer has ended the connection with a failure (a refusal, say), nothing more can be
            // sent: say so now, with the reason a read gives, rather than queue bytes that are dropped.
            if (Secure.InputFailure is not null)
            {
                throw Secure.ClosedException(OssuaryErrorReason.ConnectionClosed, "The Ossuary connection is closed; the write was not sent.");
            }

            // In pieces: the connection copies what it is given into pinned plaintext memory before it waits
            // for room, so one copy of the whole buffer held all of it (1 GiB for a 1 GiB write) for as long
            // as the peer took to read it. A piece is one copy beyond the pipe's threshold; a small write is one piece.
            bool queuedAny = false;
            do
            {
                ReadOnlyMemory<byte> piece = buffer[..Math.Min(buffer.Length, ScratchLimit)];
                FlushResult flushed;
                try
                {
                    flushed = await Secure.Output.WriteAsync(piece, cancellationToken).ConfigureAwait(false);
                }
                catch (InvalidOperationException) when (_disposed)
                {
                    throw new ObjectDisposedException(GetType().FullName, "The OssuaryStream was disposed while the write was pending.");
                }

                if (flushed.IsCompleted)
                {
                    throw Secure.ClosedException(OssuaryErrorReason.ConnectionClosed, queuedAny
                        ? "The Ossuary connection is closed; the rest of the write was not sent."
                        : "The Ossuary connection is closed; the write was not sent.");
                }

                queuedAny = true;
                buffer = buffer[piece.Length..];
            }
            while (!buffer.IsEmpty);
        }
        finally
        {
            if (leaveWrite)
            {
                LeaveWrite();
            }
        }
    }

    /// <inheritdoc />
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        ValidateBufferArguments(buffer, offset, count);
        return WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        PoolBoundWait.Result(WriteAsync(buffer.AsMemory(offset, count)).AsTask(), nameof(Write));
    }

    /// <summary>Waits until everything written so far has been sealed and written to the inner stream, and that stream flushed.</summary>
    /// <exception cref="OssuaryException">The connection ended before everything written was sent.</exception>
    /// <exception cref="ObjectDisposedException">The stream was disposed (what was written may have been dropped: see <see cref="DisposeAsync"/>).</exception>
    /// <exception cref="InvalidOperationException">The stream's authentication failed or has not finished (a stream never authenticated has nothing to flush, and returns at once).</exception>
    public override void Flush() => PoolBoundWait.Result(FlushAsync(CancellationToken.None), nameof(Flush));

    /// <inheritdoc cref="Flush"/>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the bytes are still sent.</exception>
    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken); // as every Stream, with or without bytes outstanding
        }

        // The connection first, as Secure reads it: one found gone is either disposed, which a flush must
        // not report as sent, since disposal drops what a peer that stopped reading never took; or never
        // made. Before any authentication nothing can have been written: nothing to wait for. Once one has
        // been tried, the flush is refused as a write is: it reported success for a stream whose
        // authentication had failed (or was still running), which had refused every write.
        OssuaryDuplexPipe? secure = Volatile.Read(ref _secure);
        return _disposed ? Task.FromException(new ObjectDisposedException(GetType().FullName))
            : secure is not null ? secure.WhenSentAsync(secure.PlaintextWritten, cancellationToken)
            : Volatile.Read(ref _innerPipe) is null ? Task.CompletedTask
            : Task.FromException(NotAuthenticated());
    }

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>
    /// Sends Disconnect, then disposes the inner stream unless asked to leave it open. An inner
    /// <see cref="System.Net.Sockets.NetworkStream"/> this stream owns stops receiving first (on Linux),
    /// so that the wait for the peer's answer ends at once; but while the peer is still sending (bytes
    /// from it wait unread), or (Linux) is behind with the last bytes written, the socket sends
    /// its end (FIN) after the Disconnect and is closed once the peer has closed its own, what the peer
    /// still sends read and discarded, within the 5 s that disposal gives the output: closed with the
    /// peer's bytes unread, or receiving any once closed, the socket would send a reset, which can drop
    /// the last bytes written and the Disconnect before the peer reads them. A handshake under way ends with
    /// <see cref="ObjectDisposedException"/>, also over an inner stream left open, which it no longer uses. Safe to call more than once, and from
    /// several threads at once: the first call does the work, the others wait until it is done.
    /// </summary>
    public override async ValueTask DisposeAsync()
    {
        if (BeginDisposal() is { } first)
        {
            await first.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing); // that call reports its own failure
            return;
        }

        try
        {
            CancelHandshake();
            if (Interlocked.Exchange(ref _secure, null) is { } secure)
            {
                await secure.DisposeAsync().ConfigureAwait(false);
            }

            if (!_leaveInnerStreamOpen)
            {
                if (_innerPipe is { } innerPipe)
                {
                    innerPipe.MarkClosedByOwner(); // a handshake under way fails with the stream: our doing, not a fault
                    await innerPipe.CloseAsync().ConfigureAwait(false); // the wait for the peer's close (see DisposeAsync)
                }

                await _inner.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _disposal!.SetResult();
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (BeginDisposal() is { } first)
            {
                // Another call's disposal (or DisposeAsync's own call of this, once its work is done).
                first.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing).GetAwaiter().GetResult();
            }
            else
            {
                try
                {
                    CancelHandshake();
                    Interlocked.Exchange(ref _secure, null)?.DisposeAsync().AsTask().GetAwaiter().GetResult();

                    // The inner stream is owned whether or not a handshake succeeded: disposing it only
                    // after a successful one leaked the socket of every failed (or never tried) handshake.
                    if (!_leaveInnerStreamOpen)
                    {
                        _innerPipe?.MarkClosedByOwner(); // as in DisposeAsync
                        _innerPipe?.CloseAsync().AsTask().GetAwaiter().GetResult();
                        _inner.Dispose();
                    }
                }
                finally
                {
                    _disposal!.SetResult();
                }
            }
        }

        base.Dispose(disposing);
    }

    /// <summary>
    /// Ends a handshake under way over an inner stream left open (see <see cref="_handshakeCancellation"/>); call
    /// once the stream is marked disposed. An owned inner stream is closed under the handshake, which ends it.
    /// </summary>
    private void CancelHandshake()
    {
        if (!_leaveInnerStreamOpen)
        {
            return;
        }

        try
        {
            Interlocked.Exchange(ref _handshakeCancellation, null)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The handshake ended meanwhile and let its source go: nothing left to cancel.
        }
    }

    /// <summary>Marks the stream disposed; null for the call that is to do the work, else the task of the call doing it.</summary>
    private Task? BeginDisposal()
    {
        _disposed = true;
        var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return Interlocked.CompareExchange(ref _disposal, mine, null)?.Task;
    }
}
