using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Ossuary.Pipelines.Tests.Cli;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>The telemetry sample's command line, run as a process: System.CommandLine's parsing, and keys kept out of git.</summary>
public sealed class TelemetryCommandLineTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120); // a hang guard: one run under load 8 needed more than 60 s

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-cli-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task BadArgumentsAreExit2WithAPlainMessageOnStderr()
    {
        (int code, string stdout, string stderr)[] results = await Task.WhenAll(
            RunAsync(_directory, "fleet", "--devices", "0"),
            RunAsync(_directory, "server", "--port", "99999"),
            RunAsync(_directory, "load", "--interval-ms", "soon"),
            RunAsync(_directory, "fleet", "--no-such-option", "1"),
            RunAsync(_directory, "no-such-command"));

        foreach ((int code, string stdout, string stderr) in results)
        {
            Assert.True(code == 2, $"exit {code}\n{stdout}\n{stderr}");
            Assert.Equal("", stdout);
            Assert.StartsWith("error: ", stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("System.", stderr, StringComparison.Ordinal);
            Assert.Equal(2, stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // one line and the hint
        }

        Assert.DoesNotContain("not provided", results[4].stderr, StringComparison.Ordinal);

        Assert.Contains("--devices must be a whole number from 1 to 100000, not '0'", results[0].stderr, StringComparison.Ordinal);
        Assert.Contains("--port must be a whole number from 0 to 65535, not '99999'", results[1].stderr, StringComparison.Ordinal);
        Assert.Contains("--interval-ms must be a whole number", results[2].stderr, StringComparison.Ordinal);
        Assert.Contains("--no-such-option", results[3].stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_directory, "fleet")));
    }

    [Fact]
    public void LoadLeavesAHostNameToTheClientWhichTriesEveryAddress()
    {
        // Resolved here and cut to its first address, a name whose first address does not answer (::1
        // before 127.0.0.1 for a server on IPv4 only) failed every device; the client tries each in turn.
        Assert.Equal(new DnsEndPoint("localhost", 7400), Ossuary.Samples.Telemetry.Commands.LoadCommand.ServerEndPoint("localhost", 7400));
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 7400), Ossuary.Samples.Telemetry.Commands.LoadCommand.ServerEndPoint("::1", 7400));
    }

    [Fact]
    public async Task LoadByHostNameSendsEveryReading()
    {
        Ossuary.Samples.Telemetry.Keys.Fleet fleet = Ossuary.Samples.Telemetry.Keys.Fleet.Generate(Path.Combine(_directory, "fleet"), 2);
        using OssuaryIdentity serverKey = Ossuary.Samples.Telemetry.Keys.KeyFiles.ReadSecretKey(fleet.ServerKeyPath);
        await using Ossuary.Samples.Telemetry.Server.TelemetryServer server = await Ossuary.Samples.Telemetry.Server.TelemetryServer.StartAsync(new Ossuary.Samples.Telemetry.Server.TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = Ossuary.Pipelines.Trust.OssuaryAuthorizedKeys.Load(fleet.AuthorizedKeysPath).ToList(),
            DatabasePath = Path.Combine(_directory, "telemetry.db"),
        });

        (int code, string stdout, string stderr) = await RunAsync(
            _directory, "load", "--host", "localhost", "--port", server.EndPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--keys", "fleet", "--devices", "2", "--readings", "3", "--interval-ms", "0");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("devices:  2 (2 completed, 0 failed)", stdout, StringComparison.Ordinal);
        Assert.Contains("readings: 6 sent", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnAgeBeyondTheCalendarIsABadSinceNotACrash()
    {
        // 99999999d overflows TimeSpan; 9999999d is a TimeSpan, but before year 1 when taken from now.
        foreach (string age in new[] { "99999999d", "9999999d" })
        {
            (int code, string stdout, string stderr) = await RunAsync(_directory, "query", "--db", "telemetry.db", "--device", "ab", "--since", age);

            Assert.True(code == 2, $"--since {age}: exit {code}\n{stdout}\n{stderr}");
            Assert.StartsWith("error: --since must be", stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ASummaryPeriodPastTheTimersRangeIsABadArgumentNotACrash()
    {
        // 5,000,000 s (58 days) is past what a timer takes (49.7 days): the server used to start
        // listening, then die of an unhandled exception (exit 134, a stack trace) as it set the timer.
        Assert.Equal(0, (await RunAsync(_directory, "fleet", "--devices", "1", "--out", "fleet")).code);

        (int code, string stdout, string stderr) = await RunAsync(_directory, "server", "--port", "0", "--summary-seconds", "5000000");

        Assert.True(code == 2, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Equal("", stdout);
        Assert.StartsWith("error: --summary-seconds must be a whole number from 1 to 86400, not '5000000'", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AQueryCutByItsLimitSaysSo()
    {
        // Oldest first: a device's last 15 minutes cut at --limit end well before now, and a count
        // that read as the whole answer made a device look silent since then.
        string device = new('e', 64);
        string database = Path.Combine(_directory, "telemetry.db");
        await using (Ossuary.Samples.Telemetry.Storage.SqliteReadingStore store = Ossuary.Samples.Telemetry.Storage.SqliteReadingStore.Open(database))
        {
            await store.WriteAsync(Enumerable.Range(1, 3).Select(seq => new Ossuary.Samples.Telemetry.Storage.StoredReading(device, seq, "temp", seq, seq)).ToArray(), CancellationToken.None);
        }

        (int code, string stdout, string stderr) = await RunAsync(_directory, "query", "--db", database, "--device", device, "--limit", "2");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Equal(2, stdout.Split('\n').Count(line => line.Contains("temp=", StringComparison.Ordinal)));
        Assert.Contains($"the first 2 reading(s) of {device}; more are stored (raise --limit)", stdout, StringComparison.Ordinal);

        (code, stdout, stderr) = await RunAsync(_directory, "query", "--db", database, "--device", device, "--limit", "3");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains($"3 reading(s) of {device}", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("more are stored", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnArgumentThatStartsWithAnAtSignIsTakenAsItIsNotAsAResponseFile()
    {
        // System.CommandLine would replace '@NAME' with the arguments the file NAME holds (here a
        // file the fleet must not be written over), as the ossuary tool's own test shows for send.
        await File.WriteAllTextAsync(Path.Combine(_directory, "notes"), "--out notes-fleet");

        (int code, string stdout, string stderr) = await RunAsync(_directory, "fleet", "--devices", "1", "--out", "@notes");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.True(File.Exists(Path.Combine(_directory, "@notes", "devices", "device-0000.key")));
        Assert.False(Directory.Exists(Path.Combine(_directory, "notes-fleet")));
    }

    [Fact]
    public async Task AFleetMadeInsideARepositoryIsIgnoredByGit()
    {
        Assert.Equal(0, (await RunProcessAsync(_directory, "git", "init", "-q")).code);

        (int code, string stdout, string stderr) = await RunAsync(_directory, "fleet", "--devices", "3", "--out", "fleet");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.True(File.Exists(Path.Combine(_directory, "fleet", "devices", "device-0002.key")));
        (int gitCode, string status, string gitError) = await RunProcessAsync(_directory, "git", "status", "--porcelain", "--untracked-files=all", "--ignored=no");
        Assert.True(gitCode == 0, gitError);
        Assert.Equal("", status); // no secret key shows up as something to commit
    }

    [Fact]
    public async Task AFleetThatDoesNotFitLeavesNothingBehindAndIsMadeOnceThereIsRoom()
    {
        // 64 KiB hold about sixteen key files: the run fails partway. Its files used to stay, and
        // the next run was refused ("exists") with an allow-list naming devices that had no key.
        using var disk = FullDisk.Mount();
        string output = Path.Combine(disk.Path, "fleet");

        (int code, string stdout, string stderr) = await RunAsync(_directory, "fleet", "--devices", "40", "--out", output);

        Assert.True(code == 1, $"exit {code}\n{stdout}\n{stderr}");
        Assert.True(!Directory.Exists(output), $"left behind: {string.Join(", ", Directory.Exists(output) ? Directory.GetFileSystemEntries(output, "*", SearchOption.AllDirectories) : [])}");
        Assert.Contains("No space left on device", stderr, StringComparison.Ordinal);
        Assert.Contains("the fleet was not made", stderr, StringComparison.Ordinal);

        (code, stdout, stderr) = await RunAsync(_directory, "fleet", "--devices", "4", "--out", output);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Equal(4, Directory.GetFiles(Path.Combine(output, "devices"), "*.key").Length);
        Assert.Equal(5, File.ReadAllLines(Path.Combine(output, "devices.keys")).Length);
    }

    [Fact]
    public async Task AServerStartedFromABigDirectoryTreeDoesNotWatchIt()
    {
        // ASP.NET Core watches its content root, by default the current directory, for
        // appsettings.json with one inotify watch per subdirectory: a service started from / or a
        // home directory would watch the whole tree, and can run out of watches.
        (int code, string stdout, string stderr) = await RunAsync(_directory, "fleet", "--devices", "1", "--out", "fleet");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        const int Subdirectories = 1000;
        for (int i = 0; i < Subdirectories; i++)
        {
            Directory.CreateDirectory(Path.Combine(_directory, "tree", i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        using ToolProcess server = ToolProcess.Start(Path.Combine(AppContext.BaseDirectory, "Ossuary.Samples.Telemetry.dll"), "telemetry server", _directory,
            "server", "--port", "0", "--db", "telemetry.db");
        await server.WaitForStdoutLineAsync(new Regex("^listening on .*$", RegexOptions.Multiline), HardLimit);

        int watches = InotifyWatches(server.Id);
        Assert.True(watches < Subdirectories, $"the server holds {watches} inotify watches, started from a directory with {Subdirectories} subdirectories");
    }

    /// <summary>How many inotify watches a Linux process holds (each is one "inotify wd:" line in its fdinfo).</summary>
    private static int InotifyWatches(int processId) =>
        Directory.EnumerateFiles($"/proc/{processId}/fdinfo")
            .Sum(fd =>
            {
                try
                {
                    return File.ReadLines(fd).Count(line => line.StartsWith("inotify wd:", StringComparison.Ordinal));
                }
                catch (IOException)
                {
                    return 0; // closed since it was listed
                }
            });

    /// <summary>Runs the sample as a process in <paramref name="directory"/>.</summary>
    internal static Task<(int code, string stdout, string stderr)> RunAsync(string directory, params string[] args) =>
        RunProcessAsync(directory, RepositoryPaths.DotnetHost(),
            [Path.Combine(AppContext.BaseDirectory, "Ossuary.Samples.Telemetry.dll"), .. args]);

    private static async Task<(int code, string stdout, string stderr)> RunProcessAsync(string directory, string program, params string[] args)
    {
        var info = new ProcessStartInfo(program)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
        info.Environment["HOME"] = directory;
        using var process = Process.Start(info)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(HardLimit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', args)} did not exit within {HardLimit.TotalSeconds} s");
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
