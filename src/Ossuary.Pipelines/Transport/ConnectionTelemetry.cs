using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
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

    // One limiter per logger factory, side and clock, not per plan: a client builds a plan for every
    // connect (a retry loop would log each repeat at Error) and a server one for every reload.
    private static readonly ConditionalWeakTable<ILoggerFactory, ConcurrentDictionary<(string Category, TimeProvider Time), FaultLogLimiter>> Limiters = [];

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

        string category = plan.Role == OssuaryRole.Client ? ClientCategory : ServerCategory;
        ILogger logger = loggers is null ? NullLogger.Instance : new FailSafeLogger(loggers.CreateLogger(category));
        FaultLogLimiter faults = loggers is null ? new FaultLogLimiter(plan.TimeProvider)
            : Limiters.GetValue(loggers, static _ => new()).GetOrAdd((category, plan.TimeProvider), static key => new FaultLogLimiter(key.Time));
        return new ConnectionTelemetry(logger, OssuaryMetrics.Create(meters), null, faults);
    }
}
