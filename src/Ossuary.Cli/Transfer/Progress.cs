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
        string left = rate > 0 && done < total ? TimeSpan.FromSeconds((total - done) / rate).ToString(@"hh\:mm\:ss") : "00:00:00";
        int percent = total == 0 ? 100 : (int)(done * 100 / total);
        int filled = percent / 5;
        return $"{label} [{new string('#', filled)}{new string('.', 20 - filled)}] {percent,3}% {Mib(done)}/{Mib(total)} MiB {Mib((long)rate)} MiB/s, {left} left";
    }

    private static string Mib(long bytes) => (bytes / 1048576.0).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
}
