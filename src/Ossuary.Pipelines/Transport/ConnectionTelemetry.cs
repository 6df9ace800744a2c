using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// What one secured connection reports to: its logger, the meter, a name for log lines, and the
/// limiter its listener shares for failures that are ours.
/// </summary>
internal sealed record ConnectionTelemetry(ILogger Logger, OssuaryMetrics Metrics, string? ConnectionId, FaultLogLimiter Faults)
{
    public const string ClientCategory = "Ossuary.Pipelines.Client";

    public const string ServerCategory = "Ossuary.Pipelines.Server";

    public static ConnectionTelemetry None { get; } = new(NullLogger.Instance, OssuaryMetrics.Create(null), null, new FaultLogLimiter(TimeProvider.System));

    public static ConnectionTelemetry For(ConnectionContext? connection, ILogger logger, OssuaryMetrics metrics, FaultLogLimiter faults) =>
        new(logger, metrics, connection?.ConnectionId, faults);

    /// <summary>Logs a handshake failure of ours: at Error, unless the same cause already did so within the last minute.</summary>
    public void ReportLocalFault(OssuaryRole role, Exception fault)
    {
        string cause = LocalFault.CauseOf(fault);
        LogLevel level = Faults.Next(cause, out int heldBack);
        OssuaryLog.HandshakeFaulted(Logger, level, role, ConnectionId, cause, heldBack, fault is LocalFault { InnerException: { } inner } ? inner : fault);
    }

    /// <summary>The same for an established connection.</summary>
    public void ReportLocalFault(Exception fault)
    {
        string cause = "connection: " + fault.GetType().FullName;
        LogLevel level = Faults.Next(cause, out int heldBack);
        OssuaryLog.ConnectionFaulted(Logger, level, ConnectionId, cause, heldBack, fault);
    }

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
        return new ConnectionTelemetry(logger, OssuaryMetrics.Create(meters), null, new FaultLogLimiter(plan.TimeProvider));
    }
}
