using System.Diagnostics;

namespace Ossuary.Cli.Transfer;

/// <summary>Bytes, rate and time left: a bar redrawn in place on a terminal, a plain line per 10 % otherwise.</summary>
internal sealed class Progress(string label, long total)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly bool _terminal = !Console.IsErrorRedirected;
    private long _lastDraw;
    private int _lastDecile = -1;
    private bool _silent;

    /// <summary>Reports nothing (the pieces of a chunked stream).</summary>
    public static Progress Silent => new("", 0) { _silent = true };

    public void Report(long done)
    {
        if (_silent)
        {
            return;
        }

        if (_terminal)
        {
            if (_clock.ElapsedMilliseconds - _lastDraw < 100 && done < total)
            {
                return;
            }

            _lastDraw = _clock.ElapsedMilliseconds;
            Console.Error.Write($"\r{Describe(done)}   ");
            return;
        }

        int decile = total <= 0 ? (int)Math.Min(done / (16L << 20), int.MaxValue) : (int)(done * 10 / total);
        if (decile != _lastDecile)
        {
            _lastDecile = decile;
            Console.Error.WriteLine(Describe(done));
        }
    }

    public void Finish(long done)
    {
        if (_silent)
        {
            return;
        }

        Report(done);
        if (_terminal)
        {
            Console.Error.WriteLine();
        }
    }

    private string Describe(long done)
    {
        if (total < 0)
        {
            return $"{label} {Mib(done)} MiB {Mib((long)(done / Math.Max(_clock.Elapsed.TotalSeconds, 1e-3)))} MiB/s";
        }

        double seconds = Math.Max(_clock.Elapsed.TotalSeconds, 1e-3);
        double rate = done / seconds;
        string left = rate > 0 && done < total ? TimeLeft((total - done) / rate) : "00:00:00";
        int percent = total == 0 ? 100 : (int)(done * 100 / total);
        int filled = percent / 5;
        return $"{label} [{new string('#', filled)}{new string('.', 20 - filled)}] {percent,3}% {Mib(done)}/{Mib(total)} MiB {Mib((long)rate)} MiB/s, {left} left";
    }

    /// <summary>
    /// Hours, minutes and seconds, the hours not wrapped at a day; past 99 hours only that. A length
    /// the sender announced can be any (long.MaxValue at a byte a millisecond is past what a TimeSpan
    /// holds), and a progress line must not end the transfer.
    /// </summary>
    private static string TimeLeft(double seconds)
    {
        if (!(seconds < 100 * 3600))
        {
            return "more than 99 hours";
        }

        long whole = (long)Math.Ceiling(seconds);
        return $"{whole / 3600:00}:{whole / 60 % 60:00}:{whole % 60:00}";
    }

    private static string Mib(long bytes) => (bytes / 1048576.0).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
}
