using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// Connection middleware that secures every connection of a listener with one validated plan.
/// A connection whose handshake fails never throws into the server: a failure the peer caused is
/// logged at Debug and ends the connection quietly; one of ours (a throwing <c>AuthorizeClient</c>,
/// a disposed identity, a bug) is logged at Error, limited per cause, and the client is sent
/// Disconnect (error).
/// </summary>
internal sealed class OssuaryServerMiddleware
{
    private readonly ConnectionDelegate _next;
    private readonly HandshakePlan _plan;
    private readonly ILogger _logger;
    private readonly OssuaryMetrics _metrics;
    private readonly FaultLogLimiter _faults;

    public OssuaryServerMiddleware(ConnectionDelegate next, HandshakePlan plan, ILogger logger, OssuaryMetrics metrics)
    {
        _next = next;
        _plan = plan;
        _logger = logger;
        _metrics = metrics;
        _faults = new FaultLogLimiter(plan.TimeProvider);
    }

    public async Task OnConnectionAsync(ConnectionContext context)
    {
        IDuplexPipe transport = context.Transport;
        OssuaryDuplexPipe secure;
        try
        {
            secure = await OssuaryDuplexPipe.StartAsync(transport, _plan, context, ConnectionTelemetry.For(context, _logger, _metrics, _faults), context.ConnectionClosed)
                .ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OssuaryException or OperationCanceledException or IOException)
        {
            // Already logged (at Debug or, when ours, at Error) and counted by the handshake; the connection simply ends.
            return;
        }

        context.Features.Set<IOssuaryConnectionFeature>(secure.Feature);
        context.Transport = secure;
        try
        {
            await _next(context).ConfigureAwait(false);
        }
        finally
        {
            await secure.DisposeAsync().ConfigureAwait(false);
            context.Transport = transport;
        }
    }
}
