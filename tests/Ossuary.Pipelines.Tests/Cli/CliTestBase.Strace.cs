using System.Globalization;

namespace Ossuary.Pipelines.Tests.Cli;

public abstract partial class CliTestBase
{
    /// <summary>
    /// Waits until strace's log <paramref name="log"/> (written with <c>-ttt</c>) shows the tool in a
    /// call on <paramref name="path"/> that began after <paramref name="draft"/> was last written: a
    /// look at the name or the call that gives the draft that name. Each is held back by the trace's
    /// injected delay, and strace writes a line as the delay begins (a look's once it has returned, a
    /// link's or rename's as it starts), so from then on a file that takes the name appears after
    /// the tool's last look and before its naming takes effect.
    /// </summary>
    internal static async Task WaitForCallAfterDraftAsync(string log, string path, string draft, ToolProcess tool)
    {
        double written = (File.GetLastWriteTimeUtc(draft) - DateTime.UnixEpoch).TotalSeconds;
        string named = $"\"{path}\"";
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!CallOnPathSince(log, named, written))
        {
            Assert.False(tool.HasExited, $"the tool ended before a call on {path} after it wrote {draft}:\n{tool.Stderr}\n{File.ReadAllText(log)}");
            Assert.True(waited.Elapsed < ToolProcess.HardTimeout, $"no call on {path} after {draft} was written, in {log}");
            await Task.Delay(10);
        }
    }

    private static bool CallOnPathSince(string log, string named, double since)
    {
        // strace writes the log as the calls happen: read what is there without getting in its way.
        using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line)
        {
            // "PID  SECONDS.MICROSECONDS call("path", ...": the time the call began.
            string[] fields = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 3 && fields[2].Contains(named, StringComparison.Ordinal)
                && double.TryParse(fields[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double began) && began >= since)
            {
                return true;
            }
        }

        return false;
    }
}
