using System.CommandLine;
using System.Globalization;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Samples.Telemetry.Commands;

/// <summary>
/// <c>query --db telemetry.db [--device KEY --since T]</c>: without <c>--device</c>, every device's
/// totals (readings, sequence range, missing sequence numbers); with it, that device's readings since T.
/// Reads while a server writes (SQLite WAL).
/// </summary>
internal static class QueryCommand
{
    private static readonly long MinUnixMs = DateTimeOffset.MinValue.ToUnixTimeMilliseconds();
    private static readonly long MaxUnixMs = DateTimeOffset.MaxValue.ToUnixTimeMilliseconds();

    public static Command Create()
    {
        var db = SampleOptions.Text("--db", "The SQLite file the server stores readings in.", "telemetry.db");
        var device = SampleOptions.Text("--device", "A device's public key (64 hex characters, or a unique prefix); without it, totals per device.", "");
        var since = SampleOptions.Text("--since", "Readings taken at or after T: ISO 8601 (2026-11-29T03:00:00Z), Unix milliseconds, or an age such as 15m, 2h, 1d.", "");
        var limit = SampleOptions.Int("--limit", "Readings to print at most, oldest first (a cut list says so).", 1000, min: 1);
        var command = new Command("query", "Print the stored readings of a device, or every device's totals.") { db, device, since, limit };
        command.SetAction(parse =>
        {
            string path = parse.GetValue(db)!;
            string key = parse.GetValue(device)!;
            long sinceMs = ParseSince(parse.GetValue(since)!, DateTimeOffset.UtcNow);
            return string.IsNullOrEmpty(key) ? PrintTotals(path) : PrintReadings(path, key, sinceMs, parse.GetValue(limit));
        });
        return command;
    }

    /// <summary>T as Unix milliseconds: empty is the beginning of time.</summary>
    internal static long ParseSince(string text, DateTimeOffset now)
    {
        if (text.Length == 0)
        {
            return 0;
        }

        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long ms))
        {
            return ms;
        }

        if (text.Length > 1 && long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out long amount))
        {
            TimeSpan? unit = text[^1] switch { 's' => TimeSpan.FromSeconds(1), 'm' => TimeSpan.FromMinutes(1), 'h' => TimeSpan.FromHours(1), 'd' => TimeSpan.FromDays(1), _ => null };
            // An age reaching back before year 1 (or past TimeSpan) is no time at all: a usage error, not a crash.
            if (unit is TimeSpan per && amount <= (now - DateTimeOffset.MinValue).Ticks / per.Ticks)
            {
                return (now - (per * amount)).ToUnixTimeMilliseconds();
            }
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset at))
        {
            return at.ToUnixTimeMilliseconds();
        }

        throw new UsageException($"--since must be ISO 8601, Unix milliseconds or an age such as 15m, not '{text}'");
    }

    private static int PrintTotals(string path)
    {
        IReadOnlyList<DeviceTotals> totals = ReadingQueries.Totals(path);
        Console.WriteLine($"{"device",-64}  {"readings",10}  {"first seq",10}  {"last seq",10}  {"missing",8}  last reading (UTC)");
        foreach (DeviceTotals device in totals)
        {
            string last = FormatTime(device.LastTimestampMs);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{device.Device,-64}  {device.Readings,10}  {device.FirstSequence,10}  {device.LastSequence,10}  {device.Missing,8}  {last}"));
        }

        // Not Sum(): a device's numbers are its own, and two that jumped to near long.MaxValue
        // (a firmware's "unset", say) miss more numbers together than a long holds.
        Int128 missing = totals.Aggregate(Int128.Zero, (sum, device) => sum + device.Missing);
        Console.WriteLine($"{totals.Count} device(s), {totals.Sum(d => d.Readings)} reading(s), {missing} missing sequence number(s)");
        return 0;
    }

    private static int PrintReadings(string path, string key, long sinceMs, int limit)
    {
        string device = ResolveDevice(path, key.ToLowerInvariant());

        // One more than printed, to tell a cut list (oldest first, so it ends before the newest) from
        // the whole answer: a count that read as all of it made a device look silent since its end.
        IReadOnlyList<StoredReading> found = ReadingQueries.Readings(path, device, sinceMs, limit == int.MaxValue ? limit : limit + 1);
        bool cut = found.Count > limit;
        IEnumerable<StoredReading> readings = cut ? found.Take(limit) : found;
        foreach (StoredReading reading in readings)
        {
            string at = FormatTime(reading.TimestampMs);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{at}  seq={Sequence(reading)}  {PrintableText.Escape(reading.Sensor)}={reading.Value:0.###}"));
        }

        Console.WriteLine(cut ? $"the first {limit} reading(s) of {device}; more are stored (raise --limit)" : $"{found.Count} reading(s) of {device}");
        return 0;
    }

    /// <summary>
    /// The reading's number; for one stored without it because its device had used it for another
    /// reading (origin <c>reused:&lt;seq&gt;:&lt;fingerprint&gt;</c>), that number marked <c>(reused)</c>,
    /// where <c>-</c> made it look like a reading its device did not number.
    /// </summary>
    private static string Sequence(StoredReading reading)
    {
        if (reading.Sequence is long sequence)
        {
            return sequence.ToString(CultureInfo.InvariantCulture);
        }

        const string Reused = "reused:";
        if (reading.Origin is { } origin && origin.StartsWith(Reused, StringComparison.Ordinal) && origin.IndexOf(':', Reused.Length) is int end and > 0)
        {
            return origin[Reused.Length..end] + "(reused)";
        }

        return "-";
    }

    /// <summary>
    /// A stored time as UTC, or as the raw number when no date has it: <c>ts=</c> is whatever the device
    /// sent (say, microseconds by mistake), and one such reading must not stop the query for every device.
    /// </summary>
    private static string FormatTime(long ms) =>
        ms >= MinUnixMs && ms <= MaxUnixMs
            ? DateTimeOffset.FromUnixTimeMilliseconds(ms).ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture)
            : ms.ToString(CultureInfo.InvariantCulture);

    private static string ResolveDevice(string path, string prefix)
    {
        List<string> matches = ReadingQueries.Totals(path).Select(t => t.Device).Where(d => d.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        return matches.Count switch
        {
            1 => matches[0],
            0 => throw new UsageException($"no device in '{path}' has a key starting with '{prefix}'"),
            _ => throw new UsageException($"'{prefix}' matches {matches.Count} devices; give more of the key"),
        };
    }
}
