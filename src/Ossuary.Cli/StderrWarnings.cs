using Microsoft.Extensions.Logging;

namespace Ossuary.Cli;

/// <summary>
/// The library's warnings about the tool's own files (a known-hosts file whose last line a crash cut
/// short), as the tool's other messages: one <c>ossuary: warning:</c> line on standard error each.
/// </summary>
internal sealed class StderrWarnings : ILogger
{
    public static StderrWarnings Instance { get; } = new();

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel))
        {
            Console.Error.WriteLine($"ossuary: warning: {formatter(state, exception)}");
        }
    }
}
