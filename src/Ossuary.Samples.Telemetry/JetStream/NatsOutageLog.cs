using Microsoft.Extensions.Logging;
using NATS.Client.Core;

namespace Ossuary.Samples.Telemetry.JetStream;

/// <summary>
/// Says when a NATS connection is lost and when it is back, once per outage. The NATS client retries on
/// its own, every few seconds, and tells only its own logger (none here): without this a process
/// waiting out an outage printed nothing at all, and its operator could not tell it from a hung one.
/// </summary>
internal sealed partial class NatsOutageLog
{
    private readonly ILogger _logger;
    private int _down;

    private NatsOutageLog(ILogger logger) => _logger = logger;

    /// <summary>Logs <paramref name="connection"/>'s outages to <paramref name="logger"/> from now on.</summary>
    public static void Watch(INatsConnection connection, ILogger logger)
    {
        var log = new NatsOutageLog(logger);
        connection.ConnectionDisconnected += log.OnDisconnectedAsync;
        connection.ConnectionOpened += log.OnOpenedAsync;
    }

    private ValueTask OnDisconnectedAsync(object? sender, NatsEventArgs args)
    {
        // The client raises this for the connection it lost, not for each failed attempt after; the
        // flag keeps it to one warning even if a half-made connection is lost again.
        if (Interlocked.Exchange(ref _down, 1) == 0)
        {
            LogLost(_logger, args.Message);
        }

        return ValueTask.CompletedTask;
    }

    private ValueTask OnOpenedAsync(object? sender, NatsEventArgs args)
    {
        // Also raised for the first connection, which is no recovery.
        if (Interlocked.Exchange(ref _down, 0) == 1)
        {
            LogBack(_logger, args.Message);
        }

        return ValueTask.CompletedTask;
    }

    [LoggerMessage(EventId = 1713, Level = LogLevel.Warning, Message = "Lost the NATS server {Url}; reconnecting every few seconds until it is back (nothing is stored meanwhile).")]
    private static partial void LogLost(ILogger logger, string url);

    [LoggerMessage(EventId = 1714, Level = LogLevel.Information, Message = "Reconnected to the NATS server {Url}.")]
    private static partial void LogBack(ILogger logger, string url);
}
