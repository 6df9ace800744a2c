using Microsoft.Extensions.Logging;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// A connection's logger that never throws into the connection. A logging provider that fails (a
/// full disk, a sink that went away) makes LoggerFactory's loggers throw into their caller; from
/// the inbound loop that ended the loop before it completed the application's input, whose read
/// then waited forever, and disposal threw the provider's exception and left the session's keys in
/// memory. A line that cannot be written is lost; how the connection ends must not depend on it.
/// </summary>
internal sealed class FailSafeLogger(ILogger inner) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull
    {
        try
        {
            return inner.BeginScope(state);
        }
        catch (Exception)
        {
            return null;
        }
    }

    public bool IsEnabled(LogLevel logLevel)
    {
        try
        {
            return inner.IsEnabled(logLevel);
        }
        catch (Exception)
        {
            return false;
        }
    }

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        try
        {
            inner.Log(logLevel, eventId, state, exception, formatter);
        }
        catch (Exception)
        {
            // Nowhere left to say it: the logger is what failed.
        }
    }
}
