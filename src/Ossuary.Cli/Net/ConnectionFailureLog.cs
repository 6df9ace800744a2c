using System.Diagnostics;
using System.Globalization;

namespace Ossuary.Cli.Net;

/// <summary>
/// The stderr lines of a server's failed handshakes, at most <see cref="Burst"/> a minute: a scan or
/// a flood, which a stranger brings about at will, must not fill the operator's terminal or journal
/// with a line per connection. Not for a session that was established: its end is always said in
/// full (data may have been lost), and a session already writes a line as it begins. The first failures of a minute are always shown in full (the one an
/// operator is looking for is usually the first); past them, failures are counted, and the count is
/// said once the minute is over, or when the server stops.
/// </summary>
internal sealed class ConnectionFailureLog : IDisposable
{
    /// <summary>The failures a minute reported one by one.</summary>
    public const int Burst = 10;

    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    private readonly string? _followUp;
    private readonly Lock _lock = new();
    private readonly Timer _summary;
    private long _windowStart;
    private int _shown;
    private int _suppressed;
    private bool _disposed;

    /// <param name="followUp">A line written after each failure shown (receive: that it still waits for a file).</param>
    public ConnectionFailureLog(string? followUp = null)
    {
        _followUp = followUp;
        _summary = new Timer(_ => Summarize(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>Writes <paramref name="line"/>, or counts it if this minute's lines have all been written.</summary>
    public void Report(string line)
    {
        lock (_lock)
        {
            long now = Stopwatch.GetTimestamp();
            if (_windowStart == 0 || Stopwatch.GetElapsedTime(_windowStart, now) >= Window)
            {
                WriteSummary();
                _windowStart = now;
                _shown = 0;
            }

            if (_shown < Burst)
            {
                _shown++;
                Console.Error.WriteLine(line);
                if (_followUp is not null)
                {
                    Console.Error.WriteLine(_followUp);
                }

                return;
            }

            if (_suppressed++ == 0 && !_disposed)
            {
                // Said when the minute is over, even if no failure follows to carry it.
                _summary.Change(Window - Stopwatch.GetElapsedTime(_windowStart, now), Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>Says how many failures went unreported, if any: the server is stopping.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            WriteSummary();
        }

        _summary.Dispose();
    }

    // The minute itself ends with the next failure that finds it over (Report): a timer that fires
    // late must not cut short the minute that failure started.
    private void Summarize()
    {
        lock (_lock)
        {
            WriteSummary();
        }
    }

    private void WriteSummary()
    {
        if (_suppressed > 0)
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"ossuary: {_suppressed} more connection(s) failed in the same minute, not reported one by one (at most {Burst} a minute are)"));
            _suppressed = 0;
        }
    }
}
