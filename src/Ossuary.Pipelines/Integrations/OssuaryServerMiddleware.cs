using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// Connection middleware that secures every connection of a listener with one validated plan.
/// A connection whose handshake fails is logged at Debug and ended quietly: the failure is the
/// peer's, and must never throw into the server.
/// </summary>
internal sealed class OssuaryServerMiddleware
{
    private readonly ConnectionDelegate _next;
    private readonly HandshakePlan _plan;
    private readonly ILogger _logger;
    private readonly OssuaryMetrics _metrics;

    public OssuaryServerMiddleware(ConnectionDelegate next, HandshakePlan plan, ILogger logger, OssuaryMetrics metrics)
    {
        _next = next;
        _plan = plan;
        _logger = logger;
        _metrics = metrics;
    }

    public async Task OnConnectionAsync(ConnectionContext context)
    {
        IDuplexPipe transport = context.Transport;
        OssuaryDuplexPipe secure;
        try
        {
            secure = await OssuaryDuplexPipe.StartAsync(transport, _plan, context, ConnectionTelemetry.For(context, _logger, _metrics), context.ConnectionClosed)
                .ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OssuaryException or OperationCanceledException or IOException)
        {
            // Already logged and counted by the handshake; the connection simply ends.
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
