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
    /// whole handshake is bounded by the plan's timeout; each step by the core's own wait, which a
    /// timer enforces by cancelling the pending read.
    /// </summary>
    private static async Task<TimeSpan> HandshakeAsync(IDuplexPipe transport, OssuarySession session, HandshakePlan plan, ConnectionContext? connection, ConnectionTelemetry telemetry, CancellationToken cancellationToken)
    {
        long started = plan.TimeProvider.GetTimestamp();
        using Activity? activity = OssuaryActivity.StartHandshake(plan.Role);
        telemetry.Metrics.HandshakeStarted();
        OssuaryLog.HandshakeStarted(telemetry.Logger, plan.Role, telemetry.ConnectionId);
        using var timeout = new CancellationTokenSource(plan.Timeout, plan.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            await ExchangeHandshakeAsync(transport, session, plan, connection, linked.Token).ConfigureAwait(false);
            TimeSpan elapsed = plan.TimeProvider.GetElapsedTime(started);
            telemetry.Metrics.HandshakeEnded(plan.Role, elapsed, null);
            OssuaryLog.HandshakeCompleted(telemetry.Logger, plan.Role, telemetry.ConnectionId, elapsed.TotalMilliseconds, session.RemotePublicKey);
            OssuaryActivity.Succeeded(activity, session.RemotePublicKey);
            return elapsed;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            telemetry.Metrics.HandshakeEnded(plan.Role, plan.TimeProvider.GetElapsedTime(started), OssuaryErrorReason.HandshakeTimeout);
            OssuaryLog.HandshakeTimedOut(telemetry.Logger, plan.Role, telemetry.ConnectionId, plan.Timeout.TotalMilliseconds);
            var timedOut = new OssuaryException(OssuaryErrorReason.HandshakeTimeout,
                $"The Ossuary handshake did not complete within {plan.Timeout.TotalSeconds:0.###} s.");
            OssuaryActivity.Failed(activity, timedOut.Reason, session.RemotePublicKey, timedOut.Message);
            throw timedOut;
        }
        catch (Exception ex)
        {
            OssuaryException failure = ex as OssuaryException
                ?? new OssuaryException(ex is OperationCanceledException ? OssuaryErrorReason.ConnectionClosed : OssuaryErrorReason.ConnectionFailed,
                    $"The Ossuary handshake failed: {ex.Message}", ex);
            telemetry.Metrics.HandshakeEnded(plan.Role, plan.TimeProvider.GetElapsedTime(started), failure.Reason);
            OssuaryLog.HandshakeFailed(telemetry.Logger, plan.Role, telemetry.ConnectionId, failure.Reason, ex);
            OssuaryActivity.Failed(activity, failure.Reason, session.RemotePublicKey, failure.Message);
            if (ex is OperationCanceledException)
            {
                throw;
            }

            throw failure;
        }
    }

    private static async Task ExchangeHandshakeAsync(IDuplexPipe transport, OssuarySession session, HandshakePlan plan, ConnectionContext? connection, CancellationToken cancellationToken)
    {
        var ignored = new ArrayBufferWriter<byte>(1);
        while (true)
        {
            await FlushPendingAsync(transport.Output, session, cancellationToken).ConfigureAwait(false);
            if (session.State == OssuarySessionState.Closed)
            {
                throw new OssuaryException(session.LastError);
            }

            if (session.IsEstablished)
            {
                if (plan.Role != OssuaryRole.Client && !await plan.AdmitsAsync(session.RemotePublicKey!, connection, cancellationToken).ConfigureAwait(false))
                {
                    session.Disconnect(error: true);
                    await FlushPendingAsync(transport.Output, session, cancellationToken).ConfigureAwait(false);
                    throw new OssuaryException(OssuaryErrorReason.InvalidKey, "The client's key is not authorized on this server.");
                }

                return;
            }

            ReadResult read = await ReadWithStepTimeoutAsync(transport.Input, session, plan.TimeProvider, cancellationToken).ConfigureAwait(false);
            OssuaryReceiveResult result = session.Receive(read.Buffer, ignored, out SequencePosition consumed, out SequencePosition examined);
            transport.Input.AdvanceTo(consumed, examined);
            switch (result.Status)
            {
                case OssuaryReceiveStatus.NeedMoreData when read.IsCompleted:
                    throw new OssuaryException(OssuaryErrorReason.Truncated, "The peer closed the connection during the Ossuary handshake.");
                case OssuaryReceiveStatus.UntrustedServer:
                    await DecideTrustAsync(transport, session, plan, cancellationToken).ConfigureAwait(false);
                    break;
                case OssuaryReceiveStatus.Closed:
                    await TryFlushPendingAsync(transport.Output, session).ConfigureAwait(false);
                    throw new OssuaryException(result.Reason);
                case OssuaryReceiveStatus.Data:
                    throw new OssuaryException(OssuaryErrorReason.UnexpectedPacket, "Data arrived before the handshake completed.");
            }
        }
    }

    private static async Task DecideTrustAsync(IDuplexPipe transport, OssuarySession session, HandshakePlan plan, CancellationToken cancellationToken)
    {
        OssuaryPublicKey server = session.RemotePublicKey!;
        bool trusted;
        try
        {
            trusted = plan.TrustServer is not null && await plan.TrustServer(server, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // The application refused by throwing: the server still deserves a Disconnect (error).
            session.Disconnect(error: true);
            await TryFlushPendingAsync(transport.Output, session).ConfigureAwait(false);
            throw;
        }

        if (trusted)
        {
            session.AddAuthorizedKey(server);
            return;
        }

        session.Disconnect(error: true);
        await TryFlushPendingAsync(transport.Output, session).ConfigureAwait(false);
        throw new OssuaryException(OssuaryErrorReason.UntrustedServer,
            $"The server's key {server} is not trusted. Add it to OssuaryClientOptions.TrustedServerKeys, or accept it in TrustServer.");
    }

    /// <summary>Reads, but wakes up when the core's per-step wait runs out so that it can reset.</summary>
    private static async ValueTask<ReadResult> ReadWithStepTimeoutAsync(PipeReader input, OssuarySession session, TimeProvider time, CancellationToken cancellationToken)
    {
        if (session.HandshakeTimeRemaining is not TimeSpan remaining)
        {
            return await input.ReadAsync(cancellationToken).ConfigureAwait(false);
        }

        // The core resets only once the wait is strictly exceeded.
        TimeSpan due = remaining + TimeSpan.FromMilliseconds(1);
        using ITimer timer = time.CreateTimer(static state => ((PipeReader)state!).CancelPendingRead(), input, due, Timeout.InfiniteTimeSpan);
        return await input.ReadAsync(cancellationToken).ConfigureAwait(false);
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
