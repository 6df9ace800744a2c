using System.Diagnostics;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
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
        using var bench = BenchProcess.Start(_directory, "--devices", "20", "--seconds", "1", "--json", json);

        int code = await bench.WaitForExitAsync(HardLimit);

        Assert.True(code == 0, bench.ToString());
        using JsonDocument document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        Dictionary<string, double> figures = document.RootElement.GetProperty("figures").EnumerateArray()
            .ToDictionary(f => f.GetProperty("name").GetString()!, f => f.GetProperty("value").GetDouble());
        Assert.Equal(20, figures["telemetry.devices.connected"]);
        Assert.Equal(0, figures["telemetry.readings.lost"]);
        Assert.True(figures["telemetry.readings.sent"] > 0, bench.ToString());
        Assert.True(figures["telemetry.server.cpu_seconds_per_million_readings"] > 0, bench.ToString());
        Assert.True(figures["telemetry.generator.cpu_seconds_per_million_readings"] > 0, bench.ToString());
        Assert.True(figures.ContainsKey("telemetry.server.workingset_per_device_bytes"), bench.ToString());
        Assert.True(figures.ContainsKey("telemetry.reconnect_storm.seconds"), bench.ToString());
    }

    [Fact]
    public async Task AGeneratorThatDiesFailsTheRunWithItsExitCode()
    {
        // Dies during a 10-minute hold: the bench must notice at once, not when the hold ends.
        using var bench = BenchProcess.Start(_directory, "--devices", "20", "--seconds", "1", "--hold-idle", "600");
        (int _, int generator) = await bench.WaitForHoldAsync(HardLimit);

        Process.GetProcessById(generator).Kill();
        int code = await bench.WaitForExitAsync(HardLimit);

        Assert.True(code == 1, bench.ToString());
        Assert.Contains("the generator process failed (exit code 137)", bench.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Targets (this run)", bench.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AKilledBenchLeavesNoGeneratorBehind()
    {
        using var bench = BenchProcess.Start(_directory, "--devices", "20", "--seconds", "1", "--hold-idle", "600");
        (int server, int generatorId) = await bench.WaitForHoldAsync(HardLimit);
        using Process generator = Process.GetProcessById(generatorId);

        Process.GetProcessById(server).Kill(); // SIGKILL: no handler of the bench runs
        using var timeout = new CancellationTokenSource(HardLimit);
        await generator.WaitForExitAsync(timeout.Token); // its stdin has ended: it exits by itself

        Assert.True(generator.HasExited);
    }

    /// <summary>The bench run with the test host's dotnet, its output collected line by line.</summary>
    private sealed partial class BenchProcess : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _stdout = new();
        private readonly StringBuilder _stderr = new();
        private readonly TaskCompletionSource<(int Server, int Generator)> _holding = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private BenchProcess(Process process) => _process = process;

        public string Stdout
        {
            get
            {
                lock (_stdout)
                {
                    return _stdout.ToString();
                }
            }
        }

        public string Stderr
        {
            get
            {
                lock (_stderr)
                {
                    return _stderr.ToString();
                }
            }
        }

        public static BenchProcess Start(string directory, params string[] args)
        {
            var info = new ProcessStartInfo(RepositoryPaths.DotnetHost())
            {
                WorkingDirectory = directory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            info.ArgumentList.Add(LocateBench());
            foreach (string arg in args)
            {
                info.ArgumentList.Add(arg);
            }

            var process = new Process { StartInfo = info };
            var bench = new BenchProcess(process);
            process.OutputDataReceived += (_, e) => bench.OnStdout(e.Data);
            process.ErrorDataReceived += (_, e) =>
            {
                lock (bench._stderr)
                {
                    bench._stderr.AppendLine(e.Data);
                }
            };
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return bench;
        }

        /// <summary>Waits for the first <c>--hold-idle</c> pause and returns the two process ids it prints.</summary>
        public async Task<(int Server, int Generator)> WaitForHoldAsync(TimeSpan limit)
        {
            Task done = await Task.WhenAny(_holding.Task, _process.WaitForExitAsync(), Task.Delay(limit));
            return done == _holding.Task ? await _holding.Task : throw new TimeoutException($"no hold within {limit.TotalSeconds} s\n{this}");
        }

        public async Task<int> WaitForExitAsync(TimeSpan limit)
        {
            using var timeout = new CancellationTokenSource(limit);
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"the bench did not exit within {limit.TotalSeconds} s\n{this}");
            }

            return _process.ExitCode;
        }

        public override string ToString() => $"--- stdout\n{Stdout}\n--- stderr\n{Stderr}";

        public void Dispose()
        {
            try
            {
                _process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already exited.
            }

            _process.Dispose();
        }

        private void OnStdout(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_stdout)
            {
                _stdout.AppendLine(line);
            }

            if (HoldLine().Match(line) is { Success: true } hold)
            {
                _holding.TrySetResult((int.Parse(hold.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(hold.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture)));
            }
        }

        [GeneratedRegex(@"^holding .*: server \(this process\) (\d+), generator (\d+)$")]
        private static partial Regex HoldLine();

        /// <summary>benchmarks/Ossuary.Pipelines.Telemetry.Bench/bin/CONFIGURATION/net10.0 (built through the test project's reference to it), the test assembly's own configuration first.</summary>
        private static string LocateBench()
        {
            string root = RepositoryPaths.Root();

            string Candidate(string configuration) =>
                Path.Combine(root, "benchmarks", "Ossuary.Pipelines.Telemetry.Bench", "bin", configuration, "net10.0", "Ossuary.Pipelines.Telemetry.Bench.dll");
            string own = typeof(TelemetryBenchTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
            return new[] { Candidate(own), Candidate("Release"), Candidate("Debug") }.FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException($"The telemetry bench is not built: {Candidate(own)}");
        }
    }
}
