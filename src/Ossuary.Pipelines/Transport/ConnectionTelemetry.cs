using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ossuary.Pipelines.Transport;

/// <summary>What one secured connection reports to: its logger, the meter, and a name for log lines.</summary>
internal sealed record ConnectionTelemetry(ILogger Logger, OssuaryMetrics Metrics, string? ConnectionId)
{
    public static ConnectionTelemetry None { get; } = new(NullLogger.Instance, OssuaryMetrics.Create(null), null);

    public static ConnectionTelemetry For(ConnectionContext? connection, ILogger logger, OssuaryMetrics metrics) =>
        new(logger, metrics, connection?.ConnectionId);
}
