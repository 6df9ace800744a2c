using System.Globalization;
using System.Text.RegularExpressions;
using Ossuary.Pipelines.Tests.Cli;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// "ok N" lets a device drop the readings it kept for a resend (and <c>consume</c>'s acknowledgement
/// lets JetStream delete them): by then they must be on disk, not only in the page cache.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryDurableStoreTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-durable-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task ReadingsAreOnDiskBeforeTheirDeviceIsToldTheyAreStored() => DurableAsync().WaitAsync(HardLimit);

    private async Task DurableAsync()
    {
        // The kernel's view of it: strace, from Debian's package, installed here if missing.
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        (int code, string stdout, string stderr) = await TelemetryCommandLineTests.RunAsync(_directory, "fleet", "--devices", "1", "--out", "fleet");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        string log = Path.Combine(_directory, "strace.log");
        using ToolProcess server = ToolProcess.StartProgramUnderStrace(strace, ["-f", "-y", "-e", "trace=fsync,fdatasync,accept4", "-o", log],
            Path.Combine(AppContext.BaseDirectory, "Ossuary.Samples.Telemetry.dll"), "telemetry server", _directory,
            "server", "--port", "0", "--db", "telemetry.db", "--summary-seconds", "86400");
        Match listening = await server.WaitForStdoutLineAsync(new Regex(@"^listening on 127\.0\.0\.1:(\d+) .*$", RegexOptions.Multiline), HardLimit);

        // The sample's own device: it exits 0 only once the server has answered its sync with "ok 3".
        (code, stdout, stderr) = await TelemetryCommandLineTests.RunAsync(_directory,
            "load", "--port", listening.Groups[1].Value, "--keys", "fleet", "--devices", "1", "--readings", "3", "--interval-ms", "0");
        Assert.True(code == 0, $"load: exit {code}\n{stdout}\n{stderr}");

        // Nothing of the server runs after the answer: killed, as a power cut would stop it (its
        // shutdown would checkpoint and sync the log, hiding whether the commit had).
        KillTracee(server.Id);
        await server.WaitForExitAsync(HardLimit);

        // strace -f lines are in the order the calls were made; the device's connection is the first accept.
        string[] calls = File.ReadAllLines(log);
        int accepted = Array.FindIndex(calls, line => Regex.IsMatch(line, @"accept4\(.*\) = \d+<"));
        int synced = Array.FindIndex(calls, Math.Max(accepted, 0), line => Regex.IsMatch(line, @"f(data)?sync\(\d+<[^>]*/telemetry\.db-wal>\) = 0"));
        string trace = string.Join('\n', calls.Where(line => line.Contains("sync(", StringComparison.Ordinal) || line.Contains("accept4(", StringComparison.Ordinal)));
        Assert.True(accepted >= 0, $"the device's connection is not in the trace:\n{trace}");
        Assert.True(synced > accepted, $"the device was told its readings were stored, and the log holding them was never synced:\n{trace}");
    }

    /// <summary>Kills the process strace (<paramref name="stracePid"/>) started; strace then writes the rest of its log and exits.</summary>
    private static void KillTracee(int stracePid)
    {
        string children = File.ReadAllText($"/proc/{stracePid}/task/{stracePid}/children").Trim();
        int tracee = int.Parse(children.Split(' ')[0], CultureInfo.InvariantCulture);
        using var process = System.Diagnostics.Process.GetProcessById(tracee);
        process.Kill();
    }
}
