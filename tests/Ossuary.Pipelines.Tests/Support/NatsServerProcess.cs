using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Tests.Interop.Original.Differential;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A real <c>nats-server -js</c> on 127.0.0.1, a free port and its own store directory, stopped and
/// deleted on dispose. Needs Debian's <c>nats-server</c> package: tests/install-prerequisites.sh
/// installs it where it is missing, from .ci/run or from here, so a plain <c>dotnet test</c> works on
/// a fresh machine.
/// </summary>
internal sealed class NatsServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;

    private NatsServerProcess(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        Url = $"nats://127.0.0.1:{port}";
    }

    private static readonly string[] Candidates = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"];

    public string Url { get; }

    public static async Task<NatsServerProcess> StartAsync(CancellationToken cancellationToken)
    {
        string executable = Candidates.FirstOrDefault(File.Exists)
            ?? await InstallAsync(cancellationToken);
        string directory = Directory.CreateTempSubdirectory("ossuary-nats-").FullName;
        int port = FreePort();
        var start = new ProcessStartInfo(executable)
        {
            ArgumentList = { "-js", "-a", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-sd", directory },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process process = Process.Start(start) ?? throw new InvalidOperationException("nats-server did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new NatsServerProcess(process, directory, port);
        try
        {
            while (true)
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"nats-server exited with {process.ExitCode} before it listened on port {port}");
                }

                try
                {
                    using var probe = new TcpClient();
                    await probe.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
                    return server;
                }
                catch (SocketException)
                {
                    await Task.Delay(50, cancellationToken);
                }
            }
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private static async Task<string> InstallAsync(CancellationToken cancellationToken)
    {
        string script = Path.Combine(OriginalOracle.RepositoryRoot, "tests", "install-prerequisites.sh");
        using Process install = Process.Start(new ProcessStartInfo("bash", [script])) ?? throw new InvalidOperationException("bash did not start");
        await install.WaitForExitAsync(cancellationToken);
        return Candidates.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException($"nats-server is not installed and {script} could not install it (exit {install.ExitCode}): apt-get install -y nats-server");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
