using Microsoft.Extensions.Logging;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A logger provider whose record with one event id holds the thread that logs it until released: a
/// slow sink (a console or file logger on a loaded machine), stretched so that a test can act while the
/// library is in the middle of logging.
/// </summary>
internal sealed class StallingLoggerProvider(int eventId) : ILoggerProvider
{
    private readonly TaskCompletionSource _stalled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ManualResetEventSlim _released = new();

    private int EventId => eventId;

    /// <summary>Completes when a record with the event id is being logged (and held).</summary>
    public Task Stalled => _stalled.Task;

    /// <summary>Lets the held record, and every later one, through.</summary>
    public void Release() => _released.Set();

    public ILogger CreateLogger(string categoryName) => new StallingLogger(this);

    public void Dispose()
    {
        Release();
    }

    private sealed class StallingLogger(StallingLoggerProvider provider) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Id == provider.EventId)
            {
                provider._stalled.TrySetResult();
                provider._released.Wait(TestTimeout.Default); // bounded: a test that never releases fails, it does not hang
            }
        }
    }
}
