using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ossuary.Pipelines.Transport;

/// <summary>What one secured connection reports to: its logger, the meter, and a name for log lines.</summary>
internal sealed record ConnectionTelemetry(ILogger Logger, OssuaryMetrics Metrics, string? ConnectionId)
{
    public const string ClientCategory = "Ossuary.Pipelines.Client";

    public const string ServerCategory = "Ossuary.Pipelines.Server";

    public static ConnectionTelemetry None { get; } = new(NullLogger.Instance, OssuaryMetrics.Create(null), null);

    public static ConnectionTelemetry For(ConnectionContext? connection, ILogger logger, OssuaryMetrics metrics) =>
        new(logger, metrics, connection?.ConnectionId);

    /// <summary>The telemetry a plan's options name, else the fallbacks (a host's), else none.</summary>
    public static ConnectionTelemetry For(HandshakePlan plan, ILoggerFactory? fallbackLoggers = null, IMeterFactory? fallbackMeters = null)
    {
        ILoggerFactory? loggers = plan.LoggerFactory ?? fallbackLoggers;
        IMeterFactory? meters = plan.MeterFactory ?? fallbackMeters;
        if (loggers is null && meters is null)
        {
            return None;
        }

        ILogger logger = loggers?.CreateLogger(plan.Role == OssuaryRole.Client ? ClientCategory : ServerCategory) ?? NullLogger.Instance;
        return new ConnectionTelemetry(logger, OssuaryMetrics.Create(meters), null);
    }
}
