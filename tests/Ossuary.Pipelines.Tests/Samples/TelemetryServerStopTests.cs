using System.Text.RegularExpressions;
using Ossuary.Pipelines.Tests.Cli;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// <c>server</c> stopped during a JetStream outage waits for NATS to come back, so as to publish what
/// it received; a second Ctrl+C or SIGTERM gives that up, as the README says, and says what was lost.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryServerStopTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-stop-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task ASecondSignalEndsAStopThatWaitsForJetStreamAndSaysWhatWasNotPublished() => SecondSignalAsync().WaitAsync(HardLimit);

    private async Task SecondSignalAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        (int code, string stdout, string stderr) = await TelemetryCommandLineTests.RunAsync(_directory, "fleet", "--devices", "1", "--out", "fleet");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        using ToolProcess server = ToolProcess.StartInterruptible(Path.Combine(AppContext.BaseDirectory, "Ossuary.Samples.Telemetry.dll"), "telemetry server", _directory,
            "server", "--port", "0", "--nats", nats.Url, "--summary-seconds", "86400");
        Match listening = await server.WaitForStdoutLineAsync(new Regex(@"^listening on 127\.0\.0\.1:(\d+) .*$", RegexOptions.Multiline), HardLimit);

        // NATS stops answering; a device sends 3 readings and waits for its "ok 3", which cannot come.
        await nats.PauseAsync();
        Task<(int, string, string)> load = TelemetryCommandLineTests.RunAsync(_directory,
            "load", "--port", listening.Groups[1].Value, "--keys", "fleet", "--devices", "1", "--readings", "3", "--interval-ms", "0");
        await server.WaitForStdoutAsync("JetStream did not acknowledge"); // the console log, event 1711

        // The first signal stops the server: the device is sent a Disconnect (so the stop has begun when
        // its load ends), and the server waits for JetStream with the readings it took.
        await server.SignalAsync("TERM");
        (code, stdout, stderr) = await load;
        Assert.True(code == 1, $"load: exit {code}\n{stdout}\n{stderr}");

        // The second gives up the wait: at once (within the tool's bound, not the host's 30 s shutdown
        // timeout and then the outage), exit 1, saying the readings were not published.
        await server.SignalAsync("TERM");
        ToolResult stopped = await server.WaitForExitAsync();
        Assert.True(stopped.ExitCode == 1, $"exit {stopped.ExitCode}\n{stopped.Stdout}\n{stopped.Stderr}");
        Assert.Contains("3 reading(s) received were not published", stopped.Stderr, StringComparison.Ordinal);
    }
}
