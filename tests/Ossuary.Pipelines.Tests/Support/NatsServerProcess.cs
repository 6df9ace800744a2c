using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A real <c>nats-server -js</c> on 127.0.0.1, a free port and its own store directory, stopped and
/// deleted on dispose. Needs Debian's <c>nats-server</c> package: tests/install-prerequisites.sh
/// installs it where it is missing, from .ci/run or from here, so a plain <c>dotnet test</c> works on
/// a fresh machine.
/// </summary>
internal sealed partial class NatsServerProcess : IAsyncDisposable
{
    private readonly string _directory;
    private readonly int _port;
    private Process _process;

    private NatsServerProcess(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        _port = port;
        Url = $"nats://127.0.0.1:{port}";
    }

    private static readonly string[] Candidates = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"];

    public string Url { get; }

    /// <summary>The server's store directory (<c>-sd</c>): a stream's files are under <c>jetstream/$G/streams/NAME</c>.</summary>
    public string StoreDirectory => _directory;

    public static async Task<NatsServerProcess> StartAsync(CancellationToken cancellationToken)
    {
        string directory = Directory.CreateTempSubdirectory("ossuary-nats-").FullName;

        // The server picks its own port (-p -1) and says which in its log: a port found free here and
        // handed over could be taken by another test's listener first, and a probe that connected to
        // that listener took it for nats-server (the clients' requests then failed at once).
        (Process process, int port) = await LaunchAsync(directory, -1, cancellationToken);
        return new NatsServerProcess(process, directory, port);
    }

    /// <summary>Kills the server, as a crash or a stopped service does; its files are kept for <see cref="RestartAsync"/>.</summary>
    public async Task StopAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
    }

    /// <summary>Starts the server again after <see cref="StopAsync"/>, on the same port with the same files (streams and consumers kept).</summary>
    public async Task RestartAsync(CancellationToken cancellationToken)
    {
        (Process process, _) = await LaunchAsync(_directory, _port, cancellationToken);
        _process.Dispose();
        _process = process;
    }

    private static async Task<(Process Process, int Port)> LaunchAsync(string directory, int requestedPort, CancellationToken cancellationToken)
    {
        string executable = await DebianPrerequisites.FindOrInstallAsync(Candidates, "nats-server", cancellationToken);
        var start = new ProcessStartInfo(executable)
        {
            ArgumentList = { "-js", "-a", "127.0.0.1", "-p", requestedPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "-sd", directory },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var listening = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        int port = 0;
        void OnLine(string? line)
        {
            if (line is null)
            {
                return;
            }

            log.Enqueue(line);
            Match match = ListeningLine().Match(line);
            if (match.Success)
            {
                port = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (line.Contains("Server is ready", StringComparison.Ordinal) && port > 0)
            {
                listening.TrySetResult(port);
            }
        }

        Process process = Process.Start(start) ?? throw new InvalidOperationException("nats-server did not start");
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException(
            $"nats-server exited before it was ready: {string.Join(Environment.NewLine, log)}"));
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            int ready = await listening.Task.WaitAsync(cancellationToken);
            return (process, ready);
        }
        catch
        {
            if (!process.HasExited)
            {
                process.Kill();
            }

            await process.WaitForExitAsync(CancellationToken.None);
            process.Dispose();
            if (requestedPort == -1)
            {
                Directory.Delete(directory, recursive: true);
            }

            throw;
        }
    }

    /// <summary>Freezes the server (SIGSTOP): connections stay open and nothing answers, as in an outage.</summary>
    public Task PauseAsync() => SignalAsync("STOP");

    /// <summary>Lets a paused server go on (SIGCONT).</summary>
    public Task ResumeAsync() => SignalAsync("CONT");

    private async Task SignalAsync(string signal)
    {
        // bash's own kill: /bin/kill comes with procps, which a minimal Debian does not have.
        using Process kill = Process.Start(new ProcessStartInfo("bash")
        {
            ArgumentList = { "-c", "kill -\"$0\" \"$1\"", signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        })!;
        await kill.WaitForExitAsync();
    }

    [GeneratedRegex(@"Listening for client connections on [^\s]+:(\d+)")]
    private static partial Regex ListeningLine();

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await ResumeAsync(); // a paused process would not die until resumed
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
