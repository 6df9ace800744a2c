using Microsoft.Extensions.Logging;
using NATS.Client.Core;

namespace Ossuary.Samples.Telemetry.JetStream;

/// <summary>
/// Says when a NATS connection is lost, why it cannot be made again, and when it is back, once per
/// outage. The NATS client retries on its own, every few seconds, and tells only its own logger
/// (<see cref="ClientLogs"/>, read here for the cause and otherwise silent): without this a process
/// waiting out an outage printed nothing at all, and its operator could not tell it from a hung one.
/// </summary>
internal sealed partial class NatsOutageLog(ILogger logger)
{
    private int _down;
    private int _explained;
    private Exception? _lastFailure;

    /// <summary>
    /// For <see cref="NatsOpts.LoggerFactory"/>: keeps the error the client logs when a reconnect attempt
    /// fails (it raises <see cref="INatsConnection.ReconnectFailed"/> with the address alone), and
    /// drops the rest of the client's log, as the client without a logger did.
    /// </summary>
    public ILoggerFactory ClientLogs => new ClientLog(this);

    /// <summary>Logs <paramref name="connection"/>'s outages from now on.</summary>
    public void Watch(INatsConnection connection)
    {
        connection.ConnectionDisconnected += OnDisconnectedAsync;
        connection.ReconnectFailed += OnReconnectFailedAsync;
        connection.ConnectionOpened += OnOpenedAsync;
    }

    private ValueTask OnDisconnectedAsync(object? sender, NatsEventArgs args)
    {
        // The client raises this for the connection it lost, not for each failed attempt after; the
        // flag keeps it to one warning even if a half-made connection is lost again.
        if (Interlocked.Exchange(ref _down, 1) == 0)
        {
            Volatile.Write(ref _explained, 0);
            LogLost(logger, args.Message);
        }

        return ValueTask.CompletedTask;
    }

    private ValueTask OnReconnectFailedAsync(object? sender, NatsEventArgs args)
    {
        // The first failure's cause, once an outage: refused (nothing listens), timed out (frozen, or
        // unreachable), a name that does not resolve, a TLS or authorization error are each the
        // operator's next step; every attempt's would repeat it every few seconds.
        if (Volatile.Read(ref _down) == 1 && Interlocked.Exchange(ref _explained, 1) == 0)
        {
            Exception? failure = Volatile.Read(ref _lastFailure);
            LogUnreachable(logger, args.Message, failure?.GetBaseException().Message ?? "no reason given");
        }

        return ValueTask.CompletedTask;
    }

    private ValueTask OnOpenedAsync(object? sender, NatsEventArgs args)
    {
        // Also raised for the first connection, which is no recovery.
        if (Interlocked.Exchange(ref _down, 0) == 1)
        {
            LogBack(logger, args.Message);
        }

        return ValueTask.CompletedTask;
    }

    [LoggerMessage(EventId = 1713, Level = LogLevel.Warning, Message = "Lost the NATS server {Url}; reconnecting every few seconds until it is back (nothing is stored meanwhile).")]
    private static partial void LogLost(ILogger logger, string url);

    [LoggerMessage(EventId = 1717, Level = LogLevel.Warning, Message = "Cannot reconnect to the NATS server {Url}: {Reason} (trying again every few seconds).")]
    private static partial void LogUnreachable(ILogger logger, string url, string reason);

    [LoggerMessage(EventId = 1714, Level = LogLevel.Information, Message = "Reconnected to the NATS server {Url}.")]
    private static partial void LogBack(ILogger logger, string url);

    /// <summary>The NATS client's logger: remembers the last error it logged with an exception, and nothing else.</summary>
    private sealed class ClientLog(NatsOutageLog owner) : ILoggerFactory, ILogger
    {
        public ILogger CreateLogger(string categoryName) => this;

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            // The client logs a failed reconnect attempt, with its exception, just before it raises ReconnectFailed.
            if (exception is not null && IsEnabled(logLevel))
            {
                Volatile.Write(ref owner._lastFailure, exception);
            }
        }

        public void Dispose()
        {
        }
    }
}
