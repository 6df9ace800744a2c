using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Transport;

public sealed partial class OssuaryDuplexPipe
{
    /// <summary>
    /// Drives the core through the handshake: write what it has, read one packet, repeat. The
    /// whole handshake is bounded by the plan's timeout; each step by the core's own wait, which
    /// the same timer enforces by cancelling the pending read (see <see cref="HandshakeTimer"/>).
    /// </summary>
    private static async Task<TimeSpan> HandshakeAsync(IDuplexPipe transport, OssuarySession session, HandshakePlan plan, ConnectionContext? connection, ConnectionTelemetry telemetry, long? startedAt, CancellationToken cancellationToken)
    {
        long started = startedAt ?? plan.TimeProvider.GetTimestamp();
        using Activity? activity = OssuaryActivity.StartHandshake(plan.Role);
        telemetry.Metrics.HandshakeStarted(telemetry.Logger);
        OssuaryLog.HandshakeStarted(telemetry.Logger, plan.Role, telemetry.ConnectionId);
        using var timer = new HandshakeTimer(plan.TimeProvider, plan.Timeout, cancellationToken, started);
        try
        {
            await ExchangeHandshakeAsync(transport, session, plan, connection, telemetry, timer).ConfigureAwait(false);
            TimeSpan elapsed = plan.TimeProvider.GetElapsedTime(started);
            telemetry.Metrics.HandshakeEnded(plan.Role, elapsed, null, telemetry.Logger);
            OssuaryLog.HandshakeCompleted(telemetry.Logger, plan.Role, telemetry.ConnectionId, elapsed.TotalMilliseconds, session.RemotePublicKey);
            OssuaryActivity.Succeeded(activity, session.RemotePublicKey);
            return elapsed;
        }
        catch (OperationCanceledException) when (timer.TimedOut && !cancellationToken.IsCancellationRequested)
        {
            telemetry.Metrics.HandshakeEnded(plan.Role, plan.TimeProvider.GetElapsedTime(started), OssuaryErrorReason.HandshakeTimeout, telemetry.Logger);
            string within = $"The Ossuary handshake did not complete within {plan.Timeout.TotalSeconds:0.###} s";
            if (timer.PendingCallback is { } callback)
            {
                // The application's callback used up the time, not the peer: loud, as a throwing one is.
                telemetry.ReportLocalFault(plan.Role, new LocalFault(callback, new TimeoutException(
                    $"{within}: {callback} had not returned (a callback should finish well within HandshakeTimeout and stop when its token is cancelled).")));

                // Ours, so the peer is told, as for a callback that throws: a client whose AuthorizeClient
                // never returned is established on its side and read a cut connection (Truncated) instead.
                session.Disconnect(error: true);
                await TryFlushPendingAsync(transport.Output, session).ConfigureAwait(false);
            }
            else
            {
                OssuaryLog.HandshakeTimedOut(telemetry.Logger, plan.Role, telemetry.ConnectionId, plan.Timeout.TotalMilliseconds);
            }

            var timedOut = new OssuaryException(OssuaryErrorReason.HandshakeTimeout,
                timer.PendingCallback is { } waitedFor ? $"{within}: {waitedFor} had not returned." : $"{within}.");
            OssuaryActivity.Failed(activity, timedOut.Reason, session.RemotePublicKey, timedOut.Message);
            throw timedOut;
        }
        catch (OperationCanceledException cancelled) when (cancellationToken.IsCancellationRequested)
        {
            // The caller gave up: neither side failed, and a dashboard must not count it as a failure.
            telemetry.Metrics.HandshakeCancelled(plan.Role, plan.TimeProvider.GetElapsedTime(started), telemetry.Logger);
            OssuaryLog.HandshakeCancelled(telemetry.Logger, plan.Role, telemetry.ConnectionId);
            OssuaryActivity.Cancelled(activity);

            // The timer's token is linked to the caller's: name the caller's, the one it can recognise.
            if (cancelled.CancellationToken != cancellationToken)
            {
                throw new OperationCanceledException(cancelled.Message, cancelled, cancellationToken);
            }

            throw;
        }
        catch (Exception ex) when (ex is not LocalFault && transport is IOwnerClosedTransport { ClosedByOwner: true })
        {
            // The transport's owner closed it under the handshake (an OssuaryStream disposed while it
            // authenticated): its caller gave up, as with a cancelled token, and the stream's failure
            // that followed is neither ours nor the peer's. It was logged at Error as a fault of this
            // side ("the peer was sent Disconnect (error)", which a closed stream cannot carry).
            telemetry.Metrics.HandshakeCancelled(plan.Role, plan.TimeProvider.GetElapsedTime(started), telemetry.Logger);
            OssuaryLog.HandshakeCancelled(telemetry.Logger, plan.Role, telemetry.ConnectionId);
            OssuaryActivity.Cancelled(activity);
            throw; // the owner says what happened (OssuaryStream: ObjectDisposedException)
        }
        catch (Exception ex) when (LocalFault.IsLocal(ex))
        {
            // Ours, not the peer's: say so loudly, and tell the peer it was us (Disconnect with
            // error) rather than leaving it to guess from a connection cut mid-handshake.
            Exception cause = ex is LocalFault fault ? fault.InnerException! : ex;
            var failure = new OssuaryException(OssuaryErrorReason.ConnectionFailed,
                $"The Ossuary handshake failed on this side, not the peer's: {(ex is LocalFault ? ex.Message : $"{ex.GetType().Name}: {ex.Message}")}", cause);
            telemetry.Metrics.HandshakeEnded(plan.Role, plan.TimeProvider.GetElapsedTime(started), failure.Reason, telemetry.Logger);
            telemetry.ReportLocalFault(plan.Role, ex);
            OssuaryActivity.Failed(activity, failure.Reason, session.RemotePublicKey, failure.Message);
            session.Disconnect(error: true);
            await TryFlushPendingAsync(transport.Output, session).ConfigureAwait(false);
            throw failure;
        }
        catch (Exception ex)
        {
            OssuaryException failure = ex as OssuaryException
                ?? new OssuaryException(ex is OperationCanceledException ? OssuaryErrorReason.ConnectionClosed : OssuaryErrorReason.ConnectionFailed,
                    $"The Ossuary handshake failed: {ex.Message}", ex);
            telemetry.Metrics.HandshakeEnded(plan.Role, plan.TimeProvider.GetElapsedTime(started), failure.Reason, telemetry.Logger);
            OssuaryLog.HandshakeFailed(telemetry.Logger, plan.Role, telemetry.ConnectionId, failure.Reason, ex);
            OssuaryActivity.Failed(activity, failure.Reason, session.RemotePublicKey, failure.Message);
            if (ex is OperationCanceledException)
            {
                throw; // not the caller's token (that is above): the transport's, e.g. Kestrel's abort
            }

            throw failure;
        }
    }

    /// <summary>The plan's admission check, with a throwing callback marked as our failure, not the client's.</summary>
    private static async ValueTask<bool> AdmitsAsync(HandshakePlan plan, OssuaryPublicKey client, ConnectionContext? connection, ConnectionTelemetry telemetry, HandshakeTimer timer)
    {
        CancellationToken cancellationToken = timer.Token;
        try
        {
            return await Bounded(plan.AdmitsAsync(client, connection, cancellationToken), nameof(OssuaryServerOptions.AuthorizeClient), plan.Role, telemetry, timer).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw; // the handshake timed out or the connection closed while the callback ran
        }
        catch (Exception ex)
        {
            throw new LocalFault(nameof(OssuaryServerOptions.AuthorizeClient), ex);
        }
    }

    private static async Task ExchangeHandshakeAsync(IDuplexPipe transport, OssuarySession session, HandshakePlan plan, ConnectionContext? connection, ConnectionTelemetry telemetry, HandshakeTimer timer)
    {
        CancellationToken cancellationToken = timer.Token;
        var ignored = new ArrayBufferWriter<byte>(1);
        ReadResult? watched = null;

        // Whether the peer has sent a byte: a server that ends the connection before is told apart (SilentServer).
        bool heard = false;
        while (true)
        {
            // After a trust decision, what the server said meanwhile comes before our answer.
            if (watched is null)
            {
                await FlushPendingAsync(transport.Output, session, cancellationToken).ConfigureAwait(false);
            }

            if (session.State == OssuarySessionState.Closed)
            {
                throw new OssuaryException(session.LastError);
            }

            if (session.IsEstablished)
            {
                if (plan.Role != OssuaryRole.Client && !await AdmitsAsync(plan, session.RemotePublicKey!, connection, telemetry, timer).ConfigureAwait(false))
                {
                    // Decided: its Disconnect is a farewell, not a step of the handshake. Flushed under the handshake's
                    // token, a client that read nothing until the timeout made the refusal a timeout, logged as one,
                    // and the refused key was said nowhere.
                    session.Disconnect(error: true);
                    await TryFlushPendingAsync(transport.Output, session).ConfigureAwait(false);
                    throw new OssuaryException(OssuaryErrorReason.InvalidKey, "The client's key is not authorized on this server.");
                }

                return;
            }

            OssuaryReceiveResult result;
            ReadResult read;
            if (watched is { } held)
            {
                read = held;
                watched = null;
                result = ReceiveAllBuffered(session, transport.Input, read, ignored);
            }
            else
            {
                StartStep(transport.Input, session, timer);
                try
                {
                    read = await transport.Input.ReadAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (IOException ex) when (!heard && plan.Role == OssuaryRole.Client && SilentServer.IsReset(ex))
                {
                    throw SilentServer.Reset(ex);
                }
                finally
                {
                    timer.EndStep();
                }

                heard |= !read.Buffer.IsEmpty;
                result = session.Receive(read.Buffer, ignored, out SequencePosition consumed, out SequencePosition examined);
                transport.Input.AdvanceTo(consumed, examined);
            }

            switch (result.Status)
            {
                case OssuaryReceiveStatus.NeedMoreData when read.IsCompleted:
                    throw !heard && plan.Role == OssuaryRole.Client ? SilentServer.Closed()
                        : new OssuaryException(OssuaryErrorReason.Truncated, "The peer closed the connection during the Ossuary handshake.");
                case OssuaryReceiveStatus.UntrustedServer:
                    // What arrived while the application decided is handled before ClientAuthentication
                    // goes out: a server whose step timeout ran out meanwhile has sent a Reset, and
                    // answering it starts a handshake that now succeeds, where a ClientAuthentication
                    // would be dropped and the connection "established" on one side only.
                    watched = await DecideTrustAsync(transport, session, plan, telemetry, timer).ConfigureAwait(false);
                    break;
                case OssuaryReceiveStatus.Closed:
                    await TryFlushPendingAsync(transport.Output, session).ConfigureAwait(false);
                    throw new OssuaryException(result.Reason);
                case OssuaryReceiveStatus.Data:
                    throw new OssuaryException(OssuaryErrorReason.UnexpectedPacket, "Data arrived before the handshake completed.");
            }
        }
    }

    /// <summary>
    /// Feeds the core every whole packet of <paramref name="read"/> until one has something to
    /// report (a Reset or Disconnect, say) and advances the reader past what it consumed.
    /// </summary>
    private static OssuaryReceiveResult ReceiveAllBuffered(OssuarySession session, PipeReader input, ReadResult read, ArrayBufferWriter<byte> ignored)
    {
        ReadOnlySequence<byte> buffer = read.Buffer;
        OssuaryReceiveResult result;
        SequencePosition consumed;
        SequencePosition examined;
        do
        {
            result = session.Receive(buffer, ignored, out consumed, out examined);
            buffer = buffer.Slice(consumed);
        }
        while (result.Status == OssuaryReceiveStatus.Handshake && !buffer.IsEmpty);

        input.AdvanceTo(consumed, examined);
        return result;
    }

    /// <summary>
    /// Asks the application whether to trust the server, watching the transport meanwhile, and
    /// returns what the watch read (the caller processes it before anything is sent).
    /// </summary>
    private static async Task<ReadResult> DecideTrustAsync(IDuplexPipe transport, OssuarySession session, HandshakePlan plan, ConnectionTelemetry telemetry, HandshakeTimer timer)
    {
        CancellationToken cancellationToken = timer.Token;
        OssuaryPublicKey server = session.RemotePublicKey!;
        ValueTask<ReadResult> watch = transport.Input.ReadAsync(cancellationToken);
        bool trusted;
        try
        {
            try
            {
                trusted = plan.TrustServer is not null && await Bounded(plan.TrustServer(server, cancellationToken), nameof(OssuaryClientOptions.TrustServer), plan.Role, telemetry, timer).ConfigureAwait(false);
            }
            catch (Exception ex) when (!(ex is OperationCanceledException && cancellationToken.IsCancellationRequested))
            {
                // Whatever the callback threw is ours, an IOException (a known-hosts file that
                // cannot be written) included: not a transport failure, as AdmitsAsync has it too.
                throw new LocalFault(nameof(OssuaryClientOptions.TrustServer), ex);
            }
        }
        catch
        {
            // The application refused by throwing: the server still deserves a Disconnect (error).
            await EndWatchAsync(transport.Input, watch).ConfigureAwait(false);
            session.Disconnect(error: true);
            await TryFlushPendingAsync(transport.Output, session).ConfigureAwait(false);
            throw;
        }

        if (!trusted)
        {
            await EndWatchAsync(transport.Input, watch).ConfigureAwait(false);
            session.Disconnect(error: true);
            await TryFlushPendingAsync(transport.Output, session).ConfigureAwait(false);
            throw new OssuaryException(OssuaryErrorReason.UntrustedServer,
                $"The server's key {server} is not trusted. Add it to OssuaryClientOptions.TrustedServerKeys, or accept it in TrustServer.");
        }

        session.AddAuthorizedKey(server);

        // Whatever the transport holds now is what the server said while we decided; a read still
        // waiting means it said nothing, and is cancelled (a cancelled read returns what it holds).
        if (!watch.IsCompleted)
        {
            transport.Input.CancelPendingRead();
        }

        return await watch.ConfigureAwait(false);
    }

    /// <summary>
    /// An application's decision, given up on once the handshake's token (its timeout, the caller's
    /// token) is cancelled: a callback that never returns and does not watch its token held the
    /// handshake, and a server's connection, past the timeout forever. While it is pending, the
    /// timer knows whose the wait is (<see cref="HandshakeTimer.PendingCallback"/>).
    /// </summary>
    private static async ValueTask<bool> Bounded(ValueTask<bool> decision, string callback, OssuaryRole role, ConnectionTelemetry telemetry, HandshakeTimer timer)
    {
        if (decision.IsCompleted)
        {
            return await decision.ConfigureAwait(false);
        }

        timer.PendingCallback = callback;
        Task<bool> pending = decision.AsTask();
        try
        {
            bool decided = await pending.WaitAsync(timer.Token).ConfigureAwait(false);
            timer.PendingCallback = null;
            return decided;
        }
        catch (OperationCanceledException)
        {
            ReportLateFailure(pending, callback, role, telemetry);
            throw;
        }
    }

    /// <summary>
    /// A callback given up on (the handshake timed out or was cancelled while it ran) may still fail
    /// later, the lookup it was stuck on erroring at last. That failure is this side's and is logged
    /// with its cause (event 6, as a callback that throws in time); left alone, the abandoned task
    /// faulted unobserved and its exception reached only TaskScheduler.UnobservedTaskException.
    /// </summary>
    private static void ReportLateFailure(Task<bool> pending, string callback, OssuaryRole role, ConnectionTelemetry telemetry) =>
        _ = pending.ContinueWith(
            static (task, state) =>
            {
                var (callback, role, telemetry) = ((string, OssuaryRole, ConnectionTelemetry))state!;
                AggregateException failure = task.Exception!; // read, so observed
                telemetry.ReportLocalFault(role, new LocalFault($"{callback} (after the handshake gave up on it)",
                    failure.InnerExceptions.Count == 1 ? failure.InnerException! : failure));
            },
            (callback, role, telemetry),
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);

    /// <summary>Stops a watch read on a failing handshake; its outcome no longer matters.</summary>
    private static async ValueTask EndWatchAsync(PipeReader input, ValueTask<ReadResult> watch)
    {
        if (!watch.IsCompleted)
        {
            input.CancelPendingRead();
        }

        try
        {
            ReadResult read = await watch.ConfigureAwait(false);
            input.AdvanceTo(read.Buffer.Start);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
        {
        }
    }

    /// <summary>Has the next read woken up when the core's per-step wait runs out, so that it can reset.</summary>
    private static void StartStep(PipeReader input, OssuarySession session, HandshakeTimer timer)
    {
        if (session.HandshakeTimeRemaining is TimeSpan remaining)
        {
            // The core resets only once the wait is strictly exceeded (a wait that long cannot be exceeded anyway).
            TimeSpan beyond = TimeSpan.FromMilliseconds(1);
            timer.StartStep(input, remaining < TimeSpan.MaxValue - beyond ? remaining + beyond : remaining);
        }
    }

    private static async ValueTask FlushPendingAsync(PipeWriter output, OssuarySession session, CancellationToken cancellationToken)
    {
        bool wrote = false;
        while (session.WriteHandshake(output) > 0)
        {
            wrote = true;
        }

        if (wrote)
        {
            FlushResult flushed = await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (flushed.IsCompleted && !session.IsEstablished && session.State != OssuarySessionState.Closed)
            {
                throw new OssuaryException(OssuaryErrorReason.Truncated, "The transport closed during the Ossuary handshake.");
            }
        }
    }

    /// <summary>Best effort: the farewell of a failing handshake must not hide the failure.</summary>
    private static async ValueTask TryFlushPendingAsync(PipeWriter output, OssuarySession session)
    {
        try
        {
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await FlushPendingAsync(output, session, bound.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException or OssuaryException)
        {
        }
    }
}
