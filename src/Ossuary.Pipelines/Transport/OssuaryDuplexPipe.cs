using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// The plaintext side of an Ossuary connection over a transport <see cref="IDuplexPipe"/>.
/// Bytes written to <see cref="Output"/> are sealed straight into the transport writer's memory,
/// at most 16,384 a frame, as soon as the application flushes (nothing waits to fill a frame;
/// flushes that arrive together may share one); frames read from the
/// transport are decrypted straight into <see cref="Input"/>'s memory.
/// </summary>
/// <remarks>
/// <para>
/// Completing <see cref="Output"/> sends Disconnect and ends the connection in both directions,
/// as Ossuary's Disconnect does: read what you need first; completing it with an exception sends
/// Disconnect (error) after the bytes written before. A peer whose socket then resets the connection
/// (it closed with our last bytes unread, or aborted), or a transport aborted before its output was completed
/// (Kestrel's, as the host stops, while a flush waits for a slow peer), fails <see cref="Input"/> with
/// <see cref="OssuaryErrorReason.ConnectionFailed"/>: the Disconnect may not have been received. So does a peer's
/// Reset (<see cref="OssuaryErrorReason.ConnectionReset"/>) or Disconnect (error) that had arrived before our Disconnect
/// went out, behind frames the application had not yet made room for, and so does a transport that fails
/// before those frames could be read. Completing <see cref="Input"/> only stops
/// reading: the output goes on, and what the peer sends after is not read. Completing it with an
/// exception says the application failed, as a <see cref="Pipe"/>'s reader does to its writer: the
/// connection ends once more bytes arrive, with Disconnect (error) to the peer, and is logged at
/// Debug (event 5, the exception as its inner exception), as the application's own failure is not
/// one of the connection's. A peer's clean Disconnect completes
/// <see cref="Input"/> normally; a protocol error, a peer failure, a Reset after the handshake,
/// or a transport that ends without Disconnect completes it with an <see cref="OssuaryException"/>
/// naming the reason, thrown once the application has read every byte that arrived before it. A Reset during the handshake re-handshakes, as the protocol says; after it,
/// the adapter cannot know which bytes were in flight, so it fails the connection instead.
/// </para>
/// <para>
/// Admission is asynchronous: a server decides whether it admits a client after the handshake, so a
/// client that the server's allow-list refuses still completes <see cref="ConnectAsync(IDuplexPipe, OssuaryClientOptions, CancellationToken)"/>
/// (as the original's client does) and learns of the refusal from the server's Disconnect (error):
/// its next read of <see cref="Input"/> throws an <see cref="OssuaryException"/> with
/// <see cref="OssuaryErrorReason.ConnectionFailed"/>, and writes after that return a completed
/// <see cref="FlushResult"/> (a write made before the Disconnect arrived succeeds and its bytes are
/// discarded by the server). <c>OssuaryStream</c> reports the same reason from both its reads and writes.
/// </para>
/// </remarks>
public sealed partial class OssuaryDuplexPipe : IDuplexPipe, IAsyncDisposable
{
    private readonly IDuplexPipe _transport;
    private readonly OssuarySession _session;
    private readonly ConnectionTelemetry _telemetry;

    // Receive and WriteData may run together, but a closing transition in one must not race the other:
    // the loops hold the session's own lock across their calls (re-entered inside each), not one of their own.
    private Lock SessionLock => _session.Gate;

    // Each end is one object, the application's side and its loop's (no pipe: an idle connection holds no block).
    private readonly PlaintextInput _input;
    private readonly PlaintextOutput _output;
    /// <summary>
    /// How long disposal waits for queued output (and the Disconnect) to reach a slow peer, and then for a peer
    /// still sending to close its end; a server's wait for a refused client to close its end too. The options'
    /// internal <c>CloseWait</c> (tests shorten it to the bound they wait out) carries it to each connection.
    /// </summary>
    internal static readonly TimeSpan DefaultCloseWait = TimeSpan.FromSeconds(5);

    // This connection's DefaultCloseWait, from its plan.
    private readonly TimeSpan _closeWait;

    // Set before disposal cancels the transport read, so that a stray cancellation (the
    // handshake's step timer firing late) is never mistaken for the end of the connection.
    private volatile bool _disposing;
    private Task _inbound = Task.CompletedTask;
    private Task _outbound = Task.CompletedTask;

    // Plaintext bytes the outbound loop has sealed and the transport's flush has taken, and what
    // WhenSentAsync waits on (see the Outbound part).
    private long _sentBytes;
    private TaskCompletionSource? _sentSignal;
    private volatile bool _outboundEnded;
    private volatile bool _outboundFailed;

    // Who is told once the connection has ended under the application (see WatchEnd); EndWatched once it has.
    private IConnectionEndWatcher? _endWatcher;

    // What failed the output (the transport's write, say), for writes that find it completed.
    private volatile Exception? _outboundFailure;

    // Set when disposal cut a write in progress and the peer was sent Disconnect (error): what WhenSentAsync reports for bytes not sent by then.
    private volatile OssuaryException? _writeCut;

    // Set when that failure was the transport's (not ours): a write that threw, or Kestrel's flush completed under
    // our bytes. The outbound loop logged nothing, leaving it to the input, which fails with it when it reads the
    // transport, or says the output's failure if it ends without one of its own.
    private volatile bool _outputFailureLeftToInput;

    // Set when the application's completed output sent a clean Disconnect: the connection is over
    // by our choice, so the transport going away under a read after that is the end, not a failure.
    private volatile bool _closedByApplication;

    // Set when the outbound loop completes the transport's output after a clean end: only a transport
    // failure that follows (Kestrel's abort of its input as its send loop ends) is the end we asked for.
    private volatile bool _outputCompletedByUs;

    // Set when this side's Disconnect (clean or error) ended an established session: the peer had
    // not ended it, and may still be sending (see DisposeAsync's linger).
    private volatile bool _saidGoodbye;

    // Set when the application's output, completed with an error, ended the connection: whatever
    // ends the input after that is its consequence, and the input reports this, not the peer.
    private volatile Exception? _applicationFailure;

    // The reason Abort was given, when it was: the input then says this side aborted the connection,
    // not that its application failed while writing.
    private volatile Exception? _abortReason;

    // Why the input ended, when it failed (the peer's Disconnect with error, a Reset, a truncation):
    // writes that find the connection closed report the same reason as reads.
    private volatile OssuaryException? _inputFailure;

    private OssuaryDuplexPipe(IDuplexPipe transport, OssuarySession session, ConnectionTelemetry telemetry, IOssuaryConnectionFeature feature, ConnectionContext? connection, TimeSpan closeWait)
    {
        _transport = transport;
        _closeWait = closeWait;
        _closingSocket = ClosingSocketOf(transport, connection);
        _session = session;
        _telemetry = telemetry;
        Feature = feature;
        _input = new PlaintextInput();
        _output = new PlaintextOutput();
    }

    /// <summary>Plaintext from the peer.</summary>
    public PipeReader Input => _input;

    /// <summary>Plaintext to the peer.</summary>
    public PipeWriter Output => _output;

    /// <summary>What the handshake established.</summary>
    public IOssuaryConnectionFeature Feature { get; }

    /// <summary>Completes when both directions have stopped and the transport has been completed.</summary>
    public Task Completion => Task.WhenAll(_inbound, _outbound);

    /// <summary>
    /// Tells <paramref name="watcher"/>, once and on the thread pool, when the connection has ended under the
    /// application (the peer's Disconnect, a Reset, a failure): its reads have seen the end and its writes
    /// return completed, whether or not the output has finished; else once both directions have stopped
    /// (<see cref="Completion"/>). At once (queued) if that has already happened. What <c>ConnectionClosed</c> follows.
    /// One watcher a connection.
    /// </summary>
    internal void WatchEnd(IConnectionEndWatcher watcher)
    {
        if (Interlocked.CompareExchange(ref _endWatcher, watcher, null) == EndWatched)
        {
            QueueEndWatcher(watcher);
        }
    }

    /// <summary>The connection has ended under the application: the watcher, if one is set, is told (once).</summary>
    private void SignalEndedForApplication()
    {
        if (Interlocked.Exchange(ref _endWatcher, EndWatched) is { } watcher && watcher != EndWatched)
        {
            QueueEndWatcher(watcher);
        }
    }

    // Queued, not run inline: the inbound loop that signals must not run the application's callbacks
    // (OssuaryClientConnection's ConnectionClosed), which may wait for the connection's own end. With the
    // execution context of the loop (or of WatchEnd's caller), which is the connect call's, as the
    // ContinueWith this replaces had it: the watcher's own log lines keep that call's logging scope and activity.
    private static void QueueEndWatcher(IConnectionEndWatcher watcher) =>
        ThreadPool.QueueUserWorkItem(static w => w.OnEndedForApplication(), watcher, preferLocal: false);

    // In place of the watcher once the connection has ended: a watcher that comes later is told at once.
    private static readonly IConnectionEndWatcher EndWatched = new EndedMarker();

    private sealed class EndedMarker : IConnectionEndWatcher
    {
        public void OnEndedForApplication()
        {
        }
    }

    /// <summary>Plaintext bytes the application has put in <see cref="Output"/> so far (see <see cref="WhenSentAsync"/>).</summary>
    internal long PlaintextWritten => _output.Written;

    /// <summary>
    /// Plaintext bytes of <see cref="Output"/> sealed and taken by the transport's flush so far (what
    /// <see cref="WhenSentAsync"/> waits for). Once the connection is disposed it moves no more:
    /// <see cref="PlaintextWritten"/> less this is what was written and never sent.
    /// </summary>
    internal long PlaintextSent => Interlocked.Read(ref _sentBytes);

    /// <summary>Why the input failed, once it has; null while it is open or after a clean Disconnect.</summary>
    internal OssuaryException? InputFailure => _inputFailure;

    /// <summary>
    /// The exception for an operation that found the connection closed: the input's failure when
    /// there was one (so a write reports what a read reports), else the output's (a write that
    /// failed under the transport is no clean close), else <paramref name="otherwise"/>.
    /// </summary>
    internal OssuaryException ClosedException(OssuaryErrorReason otherwise, string message) =>
        _inputFailure is { } failure ? new OssuaryException(failure.Reason, $"{message} {failure.Message}", failure)
        : _outboundFailure is { } output ? new OssuaryException(OssuaryErrorReason.ConnectionFailed, $"{message} The transport failed: {output.Message}", output)
        : new OssuaryException(otherwise, message);

    /// <summary>Runs the client handshake over <paramref name="transport"/> and returns the plaintext pipe.</summary>
    /// <exception cref="OssuaryException">The handshake failed or timed out; <see cref="OssuaryException.Reason"/> says why.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="transport"/> or <paramref name="options"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The options are invalid; the message says what to fix.</exception>
    /// <exception cref="FormatException">A key file the options name is malformed; the message names the file.</exception>
    /// <exception cref="IOException">A key file the options name cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">A secret key file the options name may be read by other users (fix with <c>chmod 600</c>), a server's authorized-keys file may be written by them (fix with <c>chmod go-w</c>), either is owned by another user, or a file cannot be opened.</exception>
    public static Task<OssuaryDuplexPipe> ConnectAsync(IDuplexPipe transport, OssuaryClientOptions options, CancellationToken cancellationToken = default) =>
        ConnectAsync(transport, options, null, cancellationToken);

    /// <summary>
    /// Runs the client handshake over <paramref name="transport"/>, a connection to
    /// <paramref name="serverEndPoint"/> (what <see cref="OssuaryClientOptions.TrustServerAtEndPoint"/> is told),
    /// and returns the plaintext pipe.
    /// </summary>
    /// <inheritdoc cref="ConnectAsync(IDuplexPipe, OssuaryClientOptions, CancellationToken)" path="/exception"/>
    public static async Task<OssuaryDuplexPipe> ConnectAsync(IDuplexPipe transport, OssuaryClientOptions options, EndPoint? serverEndPoint, CancellationToken cancellationToken)
    {
        // Before the handshake, which wrote its ClientHello into the transport's output before its flush looked
        // at the token: the caller's own completion of that output then sent it for a connect already given up.
        cancellationToken.ThrowIfCancellationRequested();
        HandshakePlan plan = HandshakePlan.ForClient(options);
        try
        {
            // A bare pipe does not know the address it reached: RemoteEndPoint is null (unknown), not the name.
            return await StartAsync(transport, plan.ForEndPoint(serverEndPoint, null), null, ConnectionTelemetry.For(plan), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            plan.ReleaseOwnIdentity(); // the handshake is over: nothing signs again
        }
    }

    /// <summary>
    /// Runs the server handshake over <paramref name="transport"/> and returns the plaintext pipe.
    /// For many connections, prefer <c>UseOssuary</c>, which validates the options once.
    /// </summary>
    /// <remarks>
    /// A server that refuses a client (its allow-list says no, or the client presents no key to an authenticated
    /// server) or whose <see cref="OssuaryServerOptions.IdentitySelector"/> fails tells the client with Disconnect
    /// (error) and throws an <see cref="OssuaryException"/>. The client may be sending by then (it counts itself
    /// established once its authentication has gone), and a socket closed with its bytes unread, or receiving them
    /// once closed, sends a reset, which on many stacks drops the Disconnect before the client reads it: it sees
    /// "connection reset", not its refusal. A bare pipe shows no socket, so this method cannot wait for the client
    /// as <c>UseOssuary</c> and an <c>OssuaryStream</c> over a <c>NetworkStream</c> do: over a socket, once this has
    /// thrown, shut down the socket's sending side (<c>Socket.Shutdown(SocketShutdown.Send)</c>), read and discard
    /// until the client closes its end (a few seconds at most; a client told closes at once), and only then close
    /// the socket, as the <c>ossuary</c> command line's servers do.
    /// <see cref="OssuaryServerOptions.MaxPendingHandshakes"/> is checked but not applied: this secures one transport
    /// its caller accepted, so the bound on handshakes under way belongs to the caller's accept loop.
    /// </remarks>
    /// <inheritdoc cref="ConnectAsync(IDuplexPipe, OssuaryClientOptions, CancellationToken)" path="/exception"/>
    public static async Task<OssuaryDuplexPipe> AcceptAsync(IDuplexPipe transport, OssuaryServerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transport);

        // Before the IdentitySelector, the application's code, which ran for a caller that had already given up
        // (only the handshake after it looked at the token); the transport is left untouched.
        cancellationToken.ThrowIfCancellationRequested();
        HandshakePlan plan = HandshakePlan.ForServer(options, out OssuaryIdentity? generated);
        try
        {
            ConnectionTelemetry telemetry = ConnectionTelemetry.For(plan);
            HandshakePlan selected;
            long started = plan.TimeProvider.GetTimestamp();
            try
            {
                selected = await SelectIdentityAsync(plan, null, telemetry, started, null, cancellationToken).ConfigureAwait(false);
            }
            catch (OssuaryException)
            {
                // Ours, not the peer's: it is told, as under UseOssuary, rather than left waiting for a ServerHandshake.
                await RefuseWithoutHandshakeAsync(transport, null, telemetry, plan.CloseWait).ConfigureAwait(false);
                throw;
            }

            return await StartAsync(transport, selected, null, telemetry, cancellationToken, started).ConfigureAwait(false);
        }
        finally
        {
            // This call's own secrets (a key file's copy, an identity generated for it): the handshake is over.
            plan.ReleaseOwnIdentity();
            generated?.Dispose();
        }
    }

    /// <summary>
    /// The plan with the identity <see cref="OssuaryServerOptions.IdentitySelector"/> chose for
    /// <paramref name="connection"/> (null for a bare pipe or stream). A selector that throws, returns a disposed identity, or returns none where no default is set, is our failure, not the
    /// peer's: logged at Error (event 20), counted as a failed handshake (<c>error.type</c> <c>ConnectionFailed</c>), and thrown as the documented
    /// <see cref="OssuaryException"/> with the selector's exception inside.
    /// </summary>
    internal static HandshakePlan SelectIdentity(HandshakePlan plan, ConnectionContext? connection, ConnectionTelemetry telemetry)
    {
        if (plan.IdentitySelector is null)
        {
            return plan;
        }

        long started = plan.TimeProvider.GetTimestamp();
        try
        {
            return Selected(plan, connection);
        }
        catch (Exception ex)
        {
            throw SelectorFailed(plan, telemetry, started, ex);
        }
    }

    /// <summary>
    /// <see cref="SelectIdentity"/> for a connection under <c>UseOssuary</c>, bounded by the handshake's timeout from
    /// <paramref name="started"/>: the selector takes no token, so one stuck on a key vault that never answers is given
    /// up on (run on the thread pool, its thread stays blocked until it returns) and fails the connection as a throwing
    /// one does, with a <see cref="TimeoutException"/>. Called on Kestrel's own call, it held the connection, its client
    /// and the host's shutdown for ever, as it ran before the handshake's timer. <see cref="AcceptAsync"/>'s caller's
    /// <paramref name="cancellationToken"/> ends the wait too (<see cref="OperationCanceledException"/>).
    /// <paramref name="givenUp"/>, if any, is given a selector's task that is still running when it is given up on (before this throws).
    /// </summary>
    internal static async Task<HandshakePlan> SelectIdentityAsync(HandshakePlan plan, ConnectionContext? connection, ConnectionTelemetry telemetry, long started, Action<Task>? givenUp, CancellationToken cancellationToken = default)
    {
        if (plan.IdentitySelector is null)
        {
            return plan;
        }

        // Started before the selector: a clock a test drives, advanced once the selector has begun, finds this timer set.
        // The caller's token (AcceptAsync's) ends the wait too: the selector ignored it, and a cancelled accept waited for it.
        using var timeout = new CancellationTokenSource(HandshakeTimer.Clamp(plan.Timeout), plan.TimeProvider);
        using CancellationTokenRegistration caller = cancellationToken.UnsafeRegister(static source => ((CancellationTokenSource)source!).Cancel(), timeout);
        Task<HandshakePlan> selecting = Task.Run(() => Selected(plan, connection));
        try
        {
            return await selecting.WaitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !selecting.IsCompleted)
        {
            // The caller gave up, as before the selector: neither side failed, and the transport is left to the caller.
            ReportLateFailure(selecting, plan.Role, telemetry);
            givenUp?.Invoke(selecting);
            throw new OperationCanceledException("The caller cancelled while the IdentitySelector ran.", cancellationToken);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !selecting.IsCompleted)
        {
            ReportLateFailure(selecting, plan.Role, telemetry);
            givenUp?.Invoke(selecting);
            throw SelectorFailed(plan, telemetry, started, new TimeoutException(
                $"OssuaryServerOptions.IdentitySelector had not returned within HandshakeTimeout ({plan.Timeout.TotalSeconds:0.###} s); the connection was ended without it (a selector should return well within that time)."));
        }
        catch (Exception ex)
        {
            throw SelectorFailed(plan, telemetry, started, ex);
        }
    }

    /// <summary>The plan with the identity the selector chose; throws what it threw, or what its choice means (none, a disposed one).</summary>
    private static HandshakePlan Selected(HandshakePlan plan, ConnectionContext? connection)
    {
        if (plan.IdentitySelector!(connection) is { } chosen)
        {
            // The selector's mistake, said as such: found only as the handshake signed, it failed as an
            // anonymous fault of "the handshake" that named no selector.
            return chosen.IsDisposed ? throw new ObjectDisposedException(nameof(OssuaryIdentity),
                "OssuaryServerOptions.IdentitySelector returned a disposed OssuaryIdentity: the server cannot sign with it.")
                : plan.WithIdentity(chosen);
        }

        return plan.HasIdentity ? plan : throw new InvalidOperationException(
            "OssuaryServerOptions.IdentitySelector returned null and no default Identity or IdentityKeyFile is set: the server has no key to present.");
    }

    /// <summary>A selector that failed us: logged at Error (event 20, limited per cause), counted as a failed handshake, and the exception to throw.</summary>
    private static OssuaryException SelectorFailed(HandshakePlan plan, ConnectionTelemetry telemetry, long started, Exception ex)
    {
        LogLevel level = telemetry.Faults.Next($"{nameof(OssuaryServerOptions.IdentitySelector)}: {ex.GetType().FullName}", out int heldBack);
        OssuaryLog.IdentitySelectorFailed(telemetry.Logger, level, telemetry.ConnectionId, heldBack, ex);

        // A client turned away is a failed handshake to whoever watches the meter, as one our AuthorizeClient failed is.
        telemetry.Metrics.HandshakeFailedBeforeItBegan(plan.Role, plan.TimeProvider.GetElapsedTime(started), OssuaryErrorReason.ConnectionFailed, telemetry.Logger);
        return new OssuaryException(OssuaryErrorReason.ConnectionFailed, $"OssuaryServerOptions.IdentitySelector failed: {ex.Message}", ex);
    }

    /// <summary>A selector given up on that throws later: still ours, logged (event 6) rather than left unobserved.</summary>
    private static void ReportLateFailure(Task<HandshakePlan> selecting, OssuaryRole role, ConnectionTelemetry telemetry) =>
        _ = selecting.ContinueWith(
            static (task, state) =>
            {
                var (role, telemetry) = ((OssuaryRole, ConnectionTelemetry))state!;
                AggregateException failure = task.Exception!; // read, so observed
                telemetry.ReportLocalFault(role, new LocalFault($"{nameof(OssuaryServerOptions.IdentitySelector)} (after the connection gave up on it)",
                    failure.InnerExceptions.Count == 1 ? failure.InnerException! : failure));
            },
            (role, telemetry),
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);

    /// <summary>The handshake over <paramref name="transport"/> with a plan ready, and the pipe it secures.</summary>
    /// <param name="transport">The connection's transport.</param>
    /// <param name="plan">The plan, its identity selected.</param>
    /// <param name="connection">Kestrel's connection, if any (AuthorizeClient is given it; its socket ends the connection's linger).</param>
    /// <param name="telemetry">Where the handshake and the connection report.</param>
    /// <param name="cancellationToken">The caller's token.</param>
    /// <param name="started">When the connection's handshake began (its timeout counts from then), if before this call: an IdentitySelector's time counts.</param>
    internal static async Task<OssuaryDuplexPipe> StartAsync(IDuplexPipe transport, HandshakePlan plan, ConnectionContext? connection, ConnectionTelemetry telemetry, CancellationToken cancellationToken, long? started = null)
    {
        ArgumentNullException.ThrowIfNull(transport);
        OssuarySession session = plan.CreateSession();
        try
        {
            TimeSpan elapsed = await HandshakeAsync(transport, session, plan, connection, telemetry, started, cancellationToken).ConfigureAwait(false);
            var feature = new OssuaryConnectionFeature(plan.Role, session.RemotePublicKey is { IsAnonymous: true } ? null : session.RemotePublicKey, plan.LocalPublicKey, elapsed);
            var pipe = new OssuaryDuplexPipe(transport, session, telemetry, feature, connection, plan.CloseWait);
            pipe._outbound = pipe.RunOutboundAsync(); // first: the inbound loop waits for it when it ends
            pipe._inbound = pipe.RunInboundAsync();
            return pipe;
        }
        catch
        {
            // A server that ended the handshake after the client's authentication told it so with
            // Disconnect (error), and the client, established on its side, may be sending already.
            bool toldAnEstablishedClient = plan.Role != OssuaryRole.Client && session.RemotePublicKey is not null;
            session.Dispose();
            if (toldAnEstablishedClient)
            {
                await LingerAfterRefusalAsync(transport, connection, telemetry, plan.CloseWait).ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>
    /// Completes the output with <paramref name="reason"/> for a connection whose transport the caller
    /// is about to cut (an abort): the input then reports this side's reason, not a peer that vanished.
    /// </summary>
    /// <remarks>
    /// Safe from any thread while the application writes: the application's writer is left alone
    /// (see <see cref="PlaintextOutput.Abort"/>) and the outbound loop, woken here, ends the output.
    /// </remarks>
    internal void Abort(Exception reason)
    {
        _abortReason ??= reason;
        _applicationFailure ??= reason;
        _output.EndConnection(); // a write from now on is told nothing more is sent
        _output.Abort(reason);
        _output.CancelOutboundRead();
    }

    /// <summary>
    /// Completes the plaintext pipes (sending Disconnect if the application has not), waits for
    /// both directions to finish, and frees the session's secrets. Output still queued for a peer
    /// that does not read is waited for at most 5 s; then the transport is aborted (its last bytes
    /// and the Disconnect are dropped) rather than disposal waiting on the peer forever. Over a socket
    /// (a client's, or Kestrel's under <c>UseOssuary</c>) whose peer is still sending when our
    /// Disconnect has gone, disposal then waits for the peer to close its end, discarding what it
    /// sends, within what is left of the same 5 s: a socket closed with the peer's bytes unread sends
    /// a reset, which drops the last bytes and the Disconnect before the peer reads them. A peer that
    /// has not closed its end by then is logged (event 5, Debug) as the socket is closed under it. A transport
    /// whose pending read cannot be cancelled (a stream written for synchronous reading) is waited for
    /// 5 s more at most: disposal then returns, logging that it gave the read up (event 11, Warning; at most once a
    /// minute, Debug in between), and the
    /// session's secrets are freed when that read ends (when the stream is closed, or the peer sends or closes). A transport
    /// that throws as its ends are completed (a stream writer whose stream fails writing what it
    /// held) is logged as a failed connection, not thrown from here; the secrets are freed whatever happens.
    /// </summary>
    /// <remarks>
    /// May run while other threads read or write. A read or a flush that is waiting returns
    /// completed. A read in progress (between ReadAsync and AdvanceTo) keeps its buffer, a write in
    /// progress (between GetMemory and Advance or FlushAsync) its memory, until the call ends; only
    /// then is that end completed and its memory zeroed and pooled, so that no buffer the application
    /// holds is ever given to another connection. Such a write's flush returns completed, and what it wrote
    /// may not be sent: when the Disconnect goes out before the call ends, it is Disconnect (error), so the
    /// peer does not take the end for a clean one (logged at Debug, event 5). A read that
    /// <see cref="PipeReader.CancelPendingRead"/> ended holds no buffer (its result's is empty, its bytes left
    /// for the next read), so it needs no <c>AdvanceTo</c>, as with a <see cref="Pipe"/>. A call the
    /// application leaves half done (no <c>AdvanceTo</c> or <c>Advance</c>, its code having thrown, say)
    /// never ends: that end's memory is zeroed when the garbage collector frees it.
    /// </remarks>
    public async ValueTask DisposeAsync()
    {
        long started = Stopwatch.GetTimestamp();

        // The application's ends, unless it is inside a read or write on another thread: then when
        // that call ends (its memory must not go back to the pool under it), and the outbound loop
        // is told now to send what was flushed and the Disconnect without waiting for it.
        if (!_output.CompleteFromDisposal() && _output.CompletionWaiting)
        {
            _output.CancelOutboundRead();
        }

        _input.CompleteFromDisposal();
        bool sessionOutlivesDisposal = false;
        try
        {
            try
            {
                await _outbound.WaitAsync(_closeWait).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // A peer that stopped reading must not hold the caller (a server's middleware) forever.
                // What it never took is dropped: said (the peer's doing, so at Debug), not passed over.
                _transport.Output.CancelPendingFlush();
                await _outbound.ConfigureAwait(false);
                OssuaryLog.ConnectionFailed(_telemetry.Logger, _telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed, new OssuaryException(OssuaryErrorReason.ConnectionFailed,
                    $"The peer read nothing for {_closeWait.TotalSeconds:0.###} s while the connection was disposed; the output still queued and the Disconnect were dropped."));
            }

            // The peer may never answer our Disconnect: stop waiting for it, without an exception where the
            // transport can. Once our Disconnect went out, a socket transport gives the peer what is left
            // of the same 5 s to close its end (see SocketDuplexPipe.TryStopReading, StreamDuplexPipe.TryStopReading and LingerAsync); after a failure, none.
            _disposing = true;
            TimeSpan lingerFor = _saidGoodbye && !_outboundFailed ? _closeWait - Stopwatch.GetElapsedTime(started) : TimeSpan.Zero;

            // Nor for room in the input: an application holding a read's buffer (its reader's completion
            // waits for that) may never make room, and the inbound loop must end all the same.
            _input.CancelPendingFlush();
            TimeSpan readEndsWithin = TimeSpan.Zero; // beyond the grace below: a linger's time
            if (_outputCompletionDeferred)
            {
                // The inbound loop waits for a peer still sending to close its end: what is left of the 5 s, no more.
                if (lingerFor > TimeSpan.Zero)
                {
                    await _inbound.WaitAsync(lingerFor).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }

                CutLinger();
            }
            else if (_transport is IReadStoppingTransport stoppable && stoppable.TryStopReading(lingerFor, _closeWait, _telemetry))
            {
                readEndsWithin = lingerFor > TimeSpan.Zero ? lingerFor : TimeSpan.Zero; // at the peer's close, or then
            }
            else
            {
                _transport.Input.CancelPendingRead();
            }

            // The read ends when asked, or at the linger's deadline. One that does neither is a read the
            // transport cannot cancel (a stream written for synchronous reading, such as a process's stdio
            // pipes, whose ReadAsync looks at its token only as it starts) waiting for a peer that sends
            // nothing, and disposal waited for it forever. Given up on after a further 5 s: the loop ends
            // when that read does (closing the stream ends most), and it frees the session's secrets then,
            // as it may still use the session until that moment.
            await _inbound.WaitAsync(readEndsWithin + _closeWait).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (!_inbound.IsCompleted)
            {
                // Said, not passed over: the caller's transport keeps a read pending (and this the key) until it is closed.
                // At Warning once a minute (the limiter's Error), else at Debug: every connection over such a transport ends so.
                LogLevel level = _telemetry.Faults.Next("disposal: a transport read not cancelled", out int heldBack) == LogLevel.Error ? LogLevel.Warning : LogLevel.Debug;
                OssuaryLog.DisposalGaveUpOnARead(_telemetry.Logger, level, _telemetry.ConnectionId, _closeWait.TotalSeconds, heldBack);
                sessionOutlivesDisposal = true;
                _ = _inbound.ContinueWith(static (_, state) => ((OssuaryDuplexPipe)state!).DisposeSession(), this,
                    CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                return;
            }

            await _inbound.ConfigureAwait(false);
        }
        finally
        {
            // Whatever the loops did (a transport that throws as it completes, say), the session key goes with the connection.
            if (!sessionOutlivesDisposal)
            {
                DisposeSession();
            }
        }
    }

    private void DisposeSession()
    {
        lock (SessionLock)
        {
            _session.Dispose();
        }
    }
}
