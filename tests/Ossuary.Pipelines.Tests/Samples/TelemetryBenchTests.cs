using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Ossuary.Pipelines.Tests.Cli;
using Ossuary.Pipelines.Tests.Hardening;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// The telemetry benchmark (benchmarks/Ossuary.Pipelines.Telemetry.Bench) as a process, at a tiny
/// scale: the server in the bench, the devices in the generator process it starts. A run must report
/// both sides, a dead generator must fail the run, and a dead bench must not leave its generator behind.
/// </summary>
[Collection(HardeningCollection.Name)] // two processes with their own thread pools; alone, so a busy machine does not starve them
public sealed partial class TelemetryBenchTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-bench-test-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task ASmallRunReportsTheServerAndTheGeneratorSeparatelyAndLosesNothing()
    {
        string json = Path.Combine(_directory, "run.json");
        using ToolProcess bench = StartBench("--devices", "20", "--seconds", "1", "--json", json);

        ToolResult run = await bench.WaitForExitAsync(HardLimit);

        Assert.True(run.ExitCode == 0, run.ToString());
        using JsonDocument document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        Dictionary<string, double> figures = document.RootElement.GetProperty("figures").EnumerateArray()
            .ToDictionary(f => f.GetProperty("name").GetString()!, f => f.GetProperty("value").GetDouble());
        Assert.Equal(20, figures["telemetry.devices.connected"]);
        Assert.Equal(0, figures["telemetry.readings.lost"]);
        Assert.True(figures["telemetry.readings.sent"] > 0, run.ToString());
        Assert.True(figures["telemetry.server.cpu_seconds_per_million_readings"] > 0, run.ToString());
        Assert.True(figures["telemetry.generator.cpu_seconds_per_million_readings"] > 0, run.ToString());
        Assert.True(figures.ContainsKey("telemetry.server.workingset_per_device_bytes"), run.ToString());
        Assert.True(figures.ContainsKey("telemetry.reconnect_storm.seconds"), run.ToString());
    }

    [Fact]
    public async Task AGeneratorThatDiesFailsTheRunWithItsExitCode()
    {
        // Dies during a 10-minute hold: the bench must notice at once, not when the hold ends.
        using ToolProcess bench = StartBench("--devices", "20", "--seconds", "1", "--hold-idle", "600");
        (int _, int generator) = await WaitForHoldAsync(bench);

        Process.GetProcessById(generator).Kill();
        ToolResult run = await bench.WaitForExitAsync(HardLimit);

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("the generator process failed (exit code 137)", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Targets (this run)", run.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AKilledBenchLeavesNoGeneratorBehind()
    {
        using ToolProcess bench = StartBench("--devices", "20", "--seconds", "1", "--hold-idle", "600");
        (int server, int generatorId) = await WaitForHoldAsync(bench);
        using Process generator = Process.GetProcessById(generatorId);

        Process.GetProcessById(server).Kill(); // SIGKILL: no handler of the bench runs
        using var timeout = new CancellationTokenSource(HardLimit);
        await generator.WaitForExitAsync(timeout.Token); // its stdin has ended: it exits by itself

        Assert.True(generator.HasExited);
    }

    /// <summary>The bench (built through the test project's reference to it) run with the test host's dotnet.</summary>
    private ToolProcess StartBench(params string[] args) =>
        ToolProcess.Start(RepositoryPaths.Built(Path.Combine("benchmarks", "Ossuary.Pipelines.Telemetry.Bench"), "Ossuary.Pipelines.Telemetry.Bench.dll"), "telemetry bench", _directory, args);

    /// <summary>Waits for the first <c>--hold-idle</c> pause and returns the two process ids it prints.</summary>
    private static async Task<(int Server, int Generator)> WaitForHoldAsync(ToolProcess bench)
    {
        Match hold = await bench.WaitForStdoutLineAsync(HoldLine(), HardLimit);
        return (int.Parse(hold.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(hold.Groups[2].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"^holding .*: server \(this process\) (\d+), generator (\d+)\r?$", RegexOptions.Multiline)]
    private static partial Regex HoldLine();
}
