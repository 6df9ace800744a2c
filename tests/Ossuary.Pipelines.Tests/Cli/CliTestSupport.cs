using System.Text.RegularExpressions;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// The CLI tests start many <c>dotnet</c> processes: run them one at a time, so a 2-core machine is
/// not starved into timeouts. They run beside the rest of the suite (xunit starts at most one test
/// per core, so beside one other test at a time), started first by <see cref="Support.LongCollectionsFirst"/>:
/// apart, they had the machine to themselves for over four minutes of mostly waiting on processes and
/// sockets, with one core idle.
/// </summary>
[CollectionDefinition(Name)]
public sealed class CliCollection
{
    public const string Name = "ossuary CLI processes";
}

/// <summary>A temporary working directory per test, and helpers shared by the CLI tests.</summary>
public abstract partial class CliTestBase : IDisposable
{
    protected const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly List<IDisposable> _processes = [];

    protected string Dir { get; } = Directory.CreateTempSubdirectory("ossuary-cli-").FullName;

    public void Dispose()
    {
        foreach (IDisposable process in _processes)
        {
            process.Dispose();
        }

        Directory.Delete(Dir, recursive: true);
        GC.SuppressFinalize(this);
    }

    internal ToolProcess Start(params string[] args)
    {
        ToolProcess process = ToolProcess.Start(Dir, args);
        _processes.Add(process);
        return process;
    }

    internal ToolProcess Start(Func<Stream, Task> stdoutSink, params string[] args)
    {
        ToolProcess process = ToolProcess.Start(Dir, stdoutSink, args);
        _processes.Add(process);
        return process;
    }

    /// <summary>Starts the tool with a non-blocking stdout (see <see cref="ToolProcess.StartWithNonBlockingStdout"/>).</summary>
    internal ToolProcess StartWithNonBlockingStdout(Func<Stream, Task> stdoutSink, params string[] args)
    {
        ToolProcess process = ToolProcess.StartWithNonBlockingStdout(Dir, stdoutSink, args);
        _processes.Add(process);
        return process;
    }

    /// <summary>Starts the tool with a non-blocking stdin (see <see cref="ToolProcess.StartWithNonBlockingStdin"/>).</summary>
    internal ToolProcess StartWithNonBlockingStdin(params string[] args)
    {
        ToolProcess process = ToolProcess.StartWithNonBlockingStdin(Dir, args);
        _processes.Add(process);
        return process;
    }

    /// <summary>Starts the tool with bash redirections applied to it (see <see cref="ToolProcess.StartRedirected"/>).</summary>
    internal ToolProcess StartRedirected(string redirections, params string[] args)
    {
        ToolProcess process = ToolProcess.StartRedirected(Dir, redirections, args);
        _processes.Add(process);
        return process;
    }

    /// <summary>Starts the tool with the files it writes limited in size (see <see cref="ToolProcess.StartWithFileSizeLimit"/>).</summary>
    internal ToolProcess StartWithFileSizeLimit(int kilobytes, params string[] args)
    {
        ToolProcess process = ToolProcess.StartWithFileSizeLimit(Dir, kilobytes, args);
        _processes.Add(process);
        return process;
    }

    /// <summary>Starts the tool with few file descriptors (see <see cref="ToolProcess.StartWithOpenFileLimit"/>).</summary>
    internal ToolProcess StartWithOpenFileLimit(int files, params string[] args)
    {
        ToolProcess process = ToolProcess.StartWithOpenFileLimit(Dir, files, args);
        _processes.Add(process);
        return process;
    }

    /// <summary>Starts the tool with a file-creation mask (see <see cref="ToolProcess.StartWithUmask"/>).</summary>
    internal ToolProcess StartWithUmask(string umask, params string[] args)
    {
        ToolProcess process = ToolProcess.StartWithUmask(Dir, umask, args);
        _processes.Add(process);
        return process;
    }

    /// <summary>Starts the tool once a line is written to its stdin (see <see cref="ToolProcess.StartGated"/>).</summary>
    internal ToolProcess StartGated(Func<Stream, Task>? stdoutSink, params string[] args)
    {
        ToolProcess process = ToolProcess.StartGated(Dir, stdoutSink, args);
        _processes.Add(process);
        return process;
    }

    internal Task<ToolResult> RunAsync(params string[] args) => ToolProcess.RunAsync(Dir, args);

    internal Task<ToolResult> RunWithInputAsync(string stdin, params string[] args) => ToolProcess.RunWithInputAsync(Dir, stdin, args);

    /// <summary>
    /// Runs <c>connect</c> against an echo server: writes <paramref name="line"/>, waits until it has
    /// come back, and only then ends stdin. Stdin ended at once starts the client's --wait (a few tenths
    /// of a second in these tests) before the echo has left the server, and a loaded machine can take
    /// longer than that: the client would close unanswered.
    /// </summary>
    internal async Task<ToolResult> EchoAsync(string line, params string[] args)
    {
        ToolProcess client = Start(args);
        await client.WriteAsync(line);
        await client.WaitForStdoutAsync(line);
        client.CloseStdin();
        return await client.WaitForExitAsync();
    }

    internal static void AssertFails(ToolResult result, int exitCode, params string[] messages)
    {
        // The reason is one line, the last one on stderr (after any progress or status lines).
        Assert.True(result.ExitCode == exitCode, $"expected exit {exitCode}:\n{result}");
        string last = result.Stderr.TrimEnd().Split('\n')[^1];
        Assert.True(last.StartsWith("ossuary: ", StringComparison.Ordinal), $"expected the reason as the last line of stderr:\n{result}");
        foreach (string message in messages)
        {
            Assert.True(last.Contains(message, StringComparison.Ordinal), $"expected '{message}' on the last line of stderr:\n{result}");
        }
    }

    internal static void AssertSucceeds(ToolResult result) => Assert.True(result.ExitCode == 0, $"expected exit 0:\n{result}");

    /// <summary>Runs <c>ossuary keygen -o NAME</c> and returns the public key it printed.</summary>
    internal async Task<string> KeygenAsync(string name)
    {
        ToolResult result = await RunAsync("keygen", "-o", name);
        AssertSucceeds(result);
        return result.Stdout.Trim();
    }

    /// <summary>Writes a secret key file without starting a process (mode 0600); returns the public key.</summary>
    protected string WriteKeyFile(string name)
    {
        using OssuaryIdentity identity = OssuaryIdentity.Generate();
        Span<char> hex = stackalloc char[OssuaryIdentity.SeedSize * 2];
        Assert.True(identity.TryFormatSeedHex(hex, out _));
        string path = Path.Combine(Dir, name);
        File.WriteAllText(path, new string(hex) + "\n");
        SetMode(name, OwnerOnly);
        return identity.PublicKey.ToString();
    }

    /// <summary>chmod; Windows has no such modes (and the tool checks none there).</summary>
    protected void SetMode(string name, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path.Combine(Dir, name), mode);
        }
    }

    protected void AssertMode(string name, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(mode, File.GetUnixFileMode(Path.Combine(Dir, name)));
        }
    }

    /// <summary>
    /// Starts a server (<c>listen</c> or <c>receive</c>) and waits until it says it is ready, port
    /// included. Give it <c>--port 0</c> and read the port with <see cref="ServerPort"/>: a port found
    /// free beforehand can be taken by another test's socket before the server binds it.
    /// </summary>
    internal async Task<ToolProcess> StartServerAsync(params string[] args)
    {
        ToolProcess server = Start(args);
        await WaitUntilListeningAsync(server);
        return server;
    }

    /// <summary>Waits until a started server has announced the address it listens on.</summary>
    internal static Task WaitUntilListeningAsync(ToolProcess server) =>
        server.WaitForStderrMatchAsync(ListeningPattern(), ToolProcess.HardTimeout);

    /// <summary>The port a server announced on stderr ("listening on 127.0.0.1:PORT", "waiting for a file on 127.0.0.1:PORT").</summary>
    internal static int ServerPort(ToolProcess server) => ListeningPattern().Match(server.Stderr) is { Success: true } match
        ? int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)
        : throw new InvalidOperationException($"no listening port on stderr:\n{server.Stderr}");

    /// <summary>The key a server announced on stderr ("server key HEX").</summary>
    internal static string ServerKey(ToolProcess server) => ServerKeyPattern().Match(server.Stderr) is { Success: true } match
        ? match.Groups[1].Value
        : throw new InvalidOperationException($"no server key on stderr:\n{server.Stderr}");

    protected static string Port(int port) => port.ToString(System.Globalization.CultureInfo.InvariantCulture);

    // The announcement's address and port end with " (" (listen) or ";" (receive): never a port cut short.
    [GeneratedRegex(@"(?:listening on|waiting for a file on) 127\.0\.0\.1:([0-9]+)[ ;]")]
    private static partial Regex ListeningPattern();

    [GeneratedRegex("server key ([0-9a-f]{64})")]
    private static partial Regex ServerKeyPattern();
}
