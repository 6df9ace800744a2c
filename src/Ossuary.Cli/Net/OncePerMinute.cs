using System.Diagnostics;

namespace Ossuary.Cli.Net;

/// <summary>
/// A line on stderr at most once a minute: a server's notice of a condition a stranger can bring
/// about at will (a connection flood) must not flood the operator's terminal or log with it.
/// </summary>
internal sealed class OncePerMinute
{
    private static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);
    private long _last;

    /// <summary>Writes <paramref name="line"/> unless this notice was written less than a minute ago.</summary>
    public void Say(string line)
    {
        long now = Stopwatch.GetTimestamp();
        long last = Interlocked.Read(ref _last);
        if ((last == 0 || Stopwatch.GetElapsedTime(last, now) >= Interval) && Interlocked.CompareExchange(ref _last, now, last) == last)
        {
            Console.Error.WriteLine(line);
        }
    }
}
