using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// Connection middleware that secures every connection of a listener with the current plan of its
/// <see cref="ServerPlanSource"/>. A connection whose handshake fails never throws into the server:
/// a failure the peer caused is logged at Debug and ends the connection quietly; one of ours (a
/// throwing <c>AuthorizeClient</c> or <c>IdentitySelector</c>, one that has not returned within the handshake's timeout, a disposed identity, a bug) is logged
/// at Error, limited per cause, and the client is told with Disconnect (error).
/// </summary>
internal sealed class OssuaryServerMiddleware
{
    private readonly ConnectionDelegate _next;
    private readonly ServerPlanSource _plans;

    public OssuaryServerMiddleware(ConnectionDelegate next, ServerPlanSource plans)
    {
        _next = next;
        _plans = plans;
    }

    public async Task OnConnectionAsync(ConnectionContext context)
    {
        if (_plans.Hold() is not { } current)
        {
            return; // the host has stopped: its key may be freed already
        }

        if (!_plans.Pending.TryEnter(current.Plan.MaxPendingHandshakes))
        {
            // Before anything of the handshake is made (a session, a timer, the selector's call): a flood of
            // connections that never finish theirs costs the server these few lines each, and no memory held.
            Reject(context, current);
            return;
        }

        IDuplexPipe transport = context.Transport;
        OssuaryDuplexPipe secure;

        // Set when an IdentitySelector given up on still runs: its connection's place is given back when it returns.
        // A box made only with a selector: a local the callback captured put a closure on every connection.
        StrongBox<bool>? placeHeldBySelector = null;
        try
        {
            ConnectionTelemetry telemetry = current.Telemetry with { ConnectionId = context.ConnectionId };

            // The handshake's timeout counts from here: an IdentitySelector that never returns ends the connection then.
            // Without one, no task is made: most servers have none, and every connection would pay for it.
            long started = current.Plan.TimeProvider.GetTimestamp();
            HandshakePlan? plan = current.Plan.IdentitySelector is null ? current.Plan
                : await SelectPlanAsync(current.Plan, context, telemetry, started, placeHeldBySelector = new(false)).ConfigureAwait(false);
            if (plan is null)
            {
                // Our failure, not the client's: it is told so, and not reset under its ClientHandshake.
                await OssuaryDuplexPipe.RefuseWithoutHandshakeAsync(transport, context, telemetry, current.Plan.CloseWait).ConfigureAwait(false);
                return;
            }

            EnableKeepAlive(context, plan.TcpKeepAlive, telemetry);

            // Not context.ConnectionClosed: Kestrel cancels it as soon as it reads the socket's end,
            // which can be before the handshake has read the ClientAuthentication already in the
            // transport pipe; a client that sends its data and Disconnect and closes at once would be
            // dropped unserved. The transport's own end (its input completes) and the handshake
            // timeout are what end a handshake whose client has gone.
            secure = await OssuaryDuplexPipe.StartAsync(transport, plan, context, telemetry, CancellationToken.None, started).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OssuaryException or OperationCanceledException or IOException)
        {
            // Already logged (at Debug or, when ours, at Error) and counted by the handshake; the connection simply ends.
            return;
        }
        finally
        {
            // Nothing of this connection signs again: a replaced plan's key may go once no other handshake holds it.
            current.Release();
            if (placeHeldBySelector is not { Value: true })
            {
                _plans.Pending.Exit();
            }
        }

        context.Features.Set<IOssuaryConnectionFeature>(secure.Feature);
        context.Transport = secure;
        try
        {
            await _next(context).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The handler failed: the client must learn it (Disconnect with error), where disposal's
            // clean Disconnect told it that whatever part of a reply it had got was all of it.
            await secure.Output.CompleteAsync(ex).ConfigureAwait(false);
            throw;
        }
        finally
        {
            // The handler has returned, so nothing of its own reads or writes any more, whatever it
            // left half done: its ends are completed now, not when a read or write it abandoned ends.
            await secure.Input.CompleteAsync().ConfigureAwait(false);
            await secure.Output.CompleteAsync().ConfigureAwait(false);
            await secure.DisposeAsync().ConfigureAwait(false);
            context.Transport = transport;
        }
    }

    /// <summary>
    /// A connection beyond <see cref="OssuaryServerOptions.MaxPendingHandshakes"/>: counted, logged at Debug at most
    /// once a minute (the flood that fills the bound would otherwise write a line each), and closed by Kestrel as the
    /// middleware returns, without a byte: telling the client (a Disconnect, and the wait for its close that makes it
    /// arrive) would hold the connection, which is what the bound is for.
    /// </summary>
    private static void Reject(ConnectionContext context, SharedPlan current)
    {
        ConnectionTelemetry telemetry = current.Telemetry;
        int limit = current.Plan.MaxPendingHandshakes;
        current.Release();
        telemetry.Metrics.ConnectionRejected(telemetry.Logger);

        // The limiter's Error is its once-a-minute report; the rest are held back, and counted in the next.
        if (telemetry.Faults.Next(nameof(OssuaryServerOptions.MaxPendingHandshakes), out int heldBack) == LogLevel.Error)
        {
            OssuaryLog.ConnectionRejected(telemetry.Logger, context.ConnectionId, limit, heldBack);
        }
    }

    /// <summary>
    /// TCP keep-alive on the connection's socket, where the transport shows it (Kestrel's socket
    /// transport does). A socket the client has already closed refuses it: Debug, as the peer's doing;
    /// a system without the options: Error, limited per cause, and the connection goes on without.
    /// </summary>
    private static void EnableKeepAlive(ConnectionContext context, TimeSpan time, ConnectionTelemetry telemetry)
    {
        if (context.Features.Get<IConnectionSocketFeature>()?.Socket is not { } socket)
        {
            return;
        }

        try
        {
            TcpKeepAlive.Apply(socket, time);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            OssuaryLog.KeepAliveNotSet(telemetry.Logger, LogLevel.Debug, context.ConnectionId, 0, ex);
        }
        catch (PlatformNotSupportedException ex)
        {
            LogLevel level = telemetry.Faults.Next($"{nameof(OssuaryServerOptions.TcpKeepAlive)}: {ex.GetType().FullName}", out int heldBack);
            OssuaryLog.KeepAliveNotSet(telemetry.Logger, level, context.ConnectionId, heldBack, ex);
        }
    }

    /// <summary>
    /// Keeps a connection's place among the pending handshakes until its IdentitySelector, given up on at the
    /// handshake's timeout, returns: it still blocks a thread of the pool (it takes no token). Given back at the
    /// timeout, a flood's every new connection called a hung selector again (a key vault that does not answer),
    /// and the blocked threads grew without bound; held, they are at most <c>MaxPendingHandshakes</c>.
    /// </summary>
    private void HoldPlaceUntil(Task selector) =>
        _ = selector.ContinueWith(static (_, pending) => ((PendingHandshakes)pending!).Exit(), _plans.Pending,
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>The plan with the identity this connection gets; null (logged at Error) when the selector failed us.</summary>
    /// <remarks><paramref name="placeHeld"/> is set when the selector, given up on, holds the connection's place until it returns.</remarks>
    private async Task<HandshakePlan?> SelectPlanAsync(HandshakePlan plan, ConnectionContext context, ConnectionTelemetry telemetry, long started, StrongBox<bool> placeHeld)
    {
        try
        {
            return await OssuaryDuplexPipe.SelectIdentityAsync(plan, context, telemetry, started, selector =>
            {
                placeHeld.Value = true;
                HoldPlaceUntil(selector);
            }).ConfigureAwait(false);
        }
        catch (OssuaryException)
        {
            return null; // logged by SelectIdentity; the connection ends with Disconnect (error), without a handshake
        }
    }
}
