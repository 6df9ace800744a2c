using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// The built <c>ossuary</c> tool (src/Ossuary.Cli, built first through the test project's
/// reference to it) run as a separate process: stdin, stdout and stderr redirected, a hard
/// timeout on every wait, and the whole process tree killed when a test is done with it.
/// </summary>
internal sealed class ToolProcess : IDisposable
{
    /// <summary>The bound on any one wait for a process; reaching it kills the tree and fails the test.</summary>
    public static readonly TimeSpan HardTimeout = TimeSpan.FromSeconds(30);

    private static readonly Lazy<string> ToolPath = new(LocateTool);

    /// <summary>The tool's assembly (ossuary.dll), for the few tests that call a piece of it in this process.</summary>
    public static string AssemblyPath => ToolPath.Value;

    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Task _readers;
    private readonly string _name;

    private ToolProcess(Process process, string name, Func<Stream, Task>? stdoutSink)
    {
        _process = process;
        _name = name;
        _readers = Task.WhenAll(
            stdoutSink is null ? DrainAsync(process.StandardOutput.BaseStream, _stdout) : Task.Run(() => stdoutSink(process.StandardOutput.BaseStream)),
            DrainAsync(process.StandardError.BaseStream, _stderr));
    }

    /// <summary>The process's stdin as bytes, for feeding it binary data.</summary>
    public Stream StdinStream => _process.StandardInput.BaseStream;

    /// <summary>
    /// Sends a signal (TERM, INT), as a terminal or a service manager would. INT reaches only a process
    /// that does not ignore it: start one with <see cref="StartInterruptible"/> to stop it with INT.
    /// </summary>
    public async Task SignalAsync(string signal)
    {
        // bash's own kill: /bin/kill comes with procps, which a minimal Debian (the .NET SDK's
        // container image among them) does not have.
        using var kill = Process.Start(new ProcessStartInfo("bash")
        {
            ArgumentList = { "-c", "kill -\"$0\" \"$1\"", signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        })!;
        await kill.WaitForExitAsync();
    }

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

    public bool HasExited => _process.HasExited;

    /// <summary>Completes when the process exits, unbounded: for a test that waits for whichever comes first, the exit or something else.</summary>
    public Task Exited => _process.WaitForExitAsync();

    /// <summary>The process's id, for looking at it from outside (/proc).</summary>
    public int Id => _process.Id;

    /// <summary>Starts <c>dotnet ossuary.dll ARGS</c> in <paramref name="directory"/>, which is also its HOME (so ~/.ossuary stays in the test's directory).</summary>
    public static ToolProcess Start(string directory, params string[] args) => Start(directory, null, args);

    /// <summary>As <see cref="Start(string, string[])"/>, with stdout handed to <paramref name="stdoutSink"/> (binary data, a slow reader, a reader that goes away) instead of collected.</summary>
    public static ToolProcess Start(string directory, Func<Stream, Task>? stdoutSink, params string[] args) =>
        Start(ToolPath.Value, "ossuary", directory, stdoutSink, args);

    /// <summary>Starts another of the repository's programs the same way: <c>dotnet ASSEMBLY ARGS</c>, named <paramref name="name"/> in failures.</summary>
    public static ToolProcess Start(string assembly, string name, string directory, params string[] args) => Start(assembly, name, directory, null, args);

    /// <summary>
    /// As <see cref="Start(string, string, string, string[])"/>, with SIGINT's default action restored
    /// (coreutils' <c>env --default-signal</c>), as a job a person started at a terminal has it, so that
    /// <c>SignalAsync("INT")</c> is Ctrl+C. A process inherits an ignored signal, and this one's tests
    /// may run as a background job of a non-interactive shell (a CI script's <c>dotnet test ... &amp;</c>),
    /// whose jobs start with SIGINT ignored; the runtime then leaves it ignored, handlers or not, and the
    /// tool never saw the INT. SIGHUP's too: a test run started under <c>nohup</c> hands it on ignored, and
    /// the tool never saw the HUP either (the HUP case of CliStopSignalTests waited out its 30 s).
    /// SIGQUIT's as well: such a shell's jobs start with it ignored as with SIGINT, which is how the
    /// QUIT case of TelemetrySecondSignalTests most likely once saw its second QUIT not taken.
    /// </summary>
    public static ToolProcess StartInterruptible(string assembly, string name, string directory, params string[] args) =>
        Start("env", ["--default-signal=INT,HUP,QUIT", RepositoryPaths.DotnetHost(), assembly], name, directory, null, args);

    /// <summary>
    /// Starts the tool through bash with <paramref name="redirections"/> (bash syntax, e.g.
    /// <c>&gt;/dev/full</c> or <c>0&lt;&gt;/dev/tcp/127.0.0.1/PORT</c>) applied to it: standard streams
    /// that fail in ways a pipe from this process cannot. Unix only.
    /// </summary>
    public static ToolProcess StartRedirected(string directory, string redirections, params string[] args) =>
        Start("bash", ["-c", $"exec \"$0\" \"$@\" {redirections}", RepositoryPaths.DotnetHost(), ToolPath.Value], "ossuary", directory, null, args);

    /// <summary>
    /// Starts the tool with its stdout (a pipe to <paramref name="stdoutSink"/>) made non-blocking, as a
    /// parent that shares its own non-blocking stdout hands it on (python3 sets O_NONBLOCK, then execs
    /// the tool): a full pipe then fails a write with EAGAIN instead of waiting. Unix only.
    /// </summary>
    public static ToolProcess StartWithNonBlockingStdout(string directory, Func<Stream, Task> stdoutSink, params string[] args) =>
        Start("python3", ["-c", "import fcntl, os, sys; fcntl.fcntl(1, fcntl.F_SETFL, fcntl.fcntl(1, fcntl.F_GETFL) | os.O_NONBLOCK); os.execv(sys.argv[1], sys.argv[1:])",
            RepositoryPaths.DotnetHost(), ToolPath.Value], "ossuary", directory, stdoutSink, args);

    /// <summary>
    /// Starts the tool with its stdin (a pipe from this process) made non-blocking, as a parent that
    /// shares its own non-blocking stdin hands it on: an empty pipe then fails a read with EAGAIN
    /// instead of waiting. Unix only.
    /// </summary>
    public static ToolProcess StartWithNonBlockingStdin(string directory, params string[] args) =>
        Start("python3", ["-c", "import fcntl, os, sys; fcntl.fcntl(0, fcntl.F_SETFL, fcntl.fcntl(0, fcntl.F_GETFL) | os.O_NONBLOCK); os.execv(sys.argv[1], sys.argv[1:])",
            RepositoryPaths.DotnetHost(), ToolPath.Value], "ossuary", directory, null, args);

    /// <summary>
    /// Starts the tool with files it writes limited to <paramref name="kilobytes"/> KiB (bash's
    /// <c>ulimit -f</c>): a disk that fills up mid-file, without a small file system to fill. SIGXFSZ
    /// keeps its default action, which ends a process that writes past the limit, as a shell or a
    /// service manager (<c>LimitFSIZE=</c>) hands it on: the tool itself must make such a write fail
    /// with EFBIG (a helper that ignored the signal for it hid that it did not). Unix only. The
    /// runtime's write-xor-execute double mapping is off there: its memory file is far larger than
    /// the limit, and the runtime does not start ("Failed to create CoreCLR").
    /// </summary>
    public static ToolProcess StartWithFileSizeLimit(string directory, int kilobytes, params string[] args) =>
        Start("bash", ["-c", $"ulimit -f {kilobytes} && DOTNET_EnableWriteXorExecute=0 exec \"$0\" \"$@\"", RepositoryPaths.DotnetHost(), ToolPath.Value], "ossuary", directory, null, args);

    /// <summary>
    /// Starts the tool with at most <paramref name="files"/> open file descriptors (bash's <c>ulimit -n</c>,
    /// soft and hard, so that the runtime cannot raise it): a connection flood that exhausts them,
    /// without opening tens of thousands of sockets. Unix only.
    /// </summary>
    public static ToolProcess StartWithOpenFileLimit(string directory, int files, params string[] args) =>
        Start("bash", ["-c", $"ulimit -n {files} && exec \"$0\" \"$@\"", RepositoryPaths.DotnetHost(), ToolPath.Value], "ossuary", directory, null, args);

    /// <summary>
    /// Starts the tool with <paramref name="umask"/> (bash's <c>umask</c>, octal) as its file-creation
    /// mask: what it creates without a mode of its own gets the mask's, as a user's shell would leave it. Unix only.
    /// </summary>
    public static ToolProcess StartWithUmask(string directory, string umask, params string[] args) =>
        Start("bash", ["-c", $"umask {umask} && exec \"$0\" \"$@\"", RepositoryPaths.DotnetHost(), ToolPath.Value], "ossuary", directory, null, args);

    /// <summary>
    /// As <see cref="Start(string, Func{Stream, Task}?, string[])"/>, but the tool starts only once a
    /// line is written to stdin (bash reads it, then runs the tool): the test can arrange its
    /// stdout first, a closed pipe say, with no race against the tool's first write. Unix only.
    /// </summary>
    public static ToolProcess StartGated(string directory, Func<Stream, Task>? stdoutSink, params string[] args) =>
        Start("bash", ["-c", "read -r _ && exec \"$0\" \"$@\"", RepositoryPaths.DotnetHost(), ToolPath.Value], "ossuary", directory, stdoutSink, args);

    /// <summary>Starts the tool under <c>STRACE -f -y -e trace=SYSCALLS -o LOG</c>, to see what it asks of the kernel (Linux).</summary>
    public static ToolProcess StartTraced(string strace, string directory, string syscalls, string log, params string[] args) =>
        StartUnderStrace(strace, ["-f", "-y", "-e", $"trace={syscalls}", "-o", log], directory, args);

    /// <summary>Starts the tool under <c>STRACE OPTIONS</c>: a trace, or faults and delays injected into its system calls (Linux).</summary>
    public static ToolProcess StartUnderStrace(string strace, string[] straceOptions, string directory, params string[] args) =>
        Start(strace, [.. straceOptions, RepositoryPaths.DotnetHost(), ToolPath.Value], "ossuary", directory, null, args);

    /// <summary>Starts another of the repository's programs (<c>dotnet ASSEMBLY ARGS</c>) under <c>STRACE OPTIONS</c>, named <paramref name="name"/> in failures (Linux).</summary>
    public static ToolProcess StartProgramUnderStrace(string strace, string[] straceOptions, string assembly, string name, string directory, params string[] args) =>
        Start(strace, [.. straceOptions, RepositoryPaths.DotnetHost(), assembly], name, directory, null, args);

    /// <summary>
    /// Starts the tool with SIGINT's default action (see <see cref="StartInterruptible"/>) in a user, mount and network
    /// namespace of its own (util-linux's <c>unshare -rmn</c>, no root needed) whose resolver is <paramref name="resolvConf"/>
    /// (bind-mounted over /etc/resolv.conf) and whose 127.0.0.1:53 is a UDP socket that never answers: a name
    /// lookup that hangs in the system's own resolver. "resolver asked" on stderr says the first query has come;
    /// an INT sent to the process is passed on to the tool. Linux only.
    /// </summary>
    public static ToolProcess StartWithUnansweredResolver(string directory, string resolvConf, params string[] args) =>
        Start("unshare", ["-rmn", "python3", "-c", UnansweredResolver, resolvConf, RepositoryPaths.DotnetHost(), ToolPath.Value], "ossuary", directory, null, args);

    // The namespace's loopback is down until brought up (SIOCSIFFLAGS); the socket is bound before the tool
    // starts, so that its first query finds it; the tool runs as a child, and this process waits for it.
    private const string UnansweredResolver = """
        import fcntl, os, signal, socket, struct, subprocess, sys, threading
        resolv, tool = sys.argv[1], sys.argv[2:]
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        fcntl.ioctl(sink, 0x8914, struct.pack('16sh', b'lo', 0x1 | 0x8 | 0x40))
        sink.bind(('127.0.0.1', 53))
        subprocess.run(['mount', '--bind', resolv, '/etc/resolv.conf'], check=True)
        child = os.fork()
        if child == 0:
            sink.close()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.execv(tool[0], tool)
        signal.signal(signal.SIGINT, lambda *_: os.kill(child, signal.SIGINT))
        def report():
            sink.recvfrom(512)
            sys.stderr.write('resolver asked\n')
            sys.stderr.flush()
        threading.Thread(target=report, daemon=True).start()
        code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        sys.exit(128 - code if code < 0 else code) # a child a signal ended, as a shell reports it
        """;

    /// <summary>
    /// Starts the tool with a terminal (a pseudo-terminal from util-linux's <c>script</c>) as its stdin,
    /// stdout and stderr, all three read back as this process's stdout; <c>script -e</c> exits with the
    /// tool's exit code. For what the tool does differently when a person types its input. Unix only.
    /// </summary>
    public static ToolProcess StartOnTerminal(string directory, params string[] args) =>
        Start("script", ["-qec", string.Join(' ', new[] { "exec", RepositoryPaths.DotnetHost(), ToolPath.Value }.Concat(args).Select(arg => "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'")), "/dev/null"],
            "ossuary", directory, null, []);

    private static ToolProcess Start(string assembly, string name, string directory, Func<Stream, Task>? stdoutSink, string[] args) =>
        Start(RepositoryPaths.DotnetHost(), [assembly], name, directory, stdoutSink, args);

    private static ToolProcess Start(string program, string[] leading, string name, string directory, Func<Stream, Task>? stdoutSink, string[] args)
    {
        var info = new ProcessStartInfo(program)
        {
            WorkingDirectory = directory,
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string arg in leading)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["HOME"] = directory;
        info.Environment["USERPROFILE"] = directory;
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
        return new ToolProcess(process, string.Join(' ', [name, .. args]), stdoutSink);
    }

    /// <summary>Runs the tool with stdin closed (or fed <paramref name="stdin"/>) and waits for it to exit.</summary>
    public static async Task<ToolResult> RunAsync(string directory, params string[] args) => await RunWithInputAsync(directory, null, args);

    public static async Task<ToolResult> RunWithInputAsync(string directory, string? stdin, params string[] args)
    {
        using ToolProcess process = Start(directory, args);
        if (stdin is not null)
        {
            await process.WriteAsync(stdin);
        }

        process.CloseStdin();
        return await process.WaitForExitAsync();
    }

    public async Task WriteAsync(string text)
    {
        await _process.StandardInput.WriteAsync(text);
        await _process.StandardInput.FlushAsync();
    }

    public void CloseStdin() => _process.StandardInput.Close();

    /// <summary>Waits until stdout holds <paramref name="text"/>; fails if the process exits or the timeout passes first.</summary>
    public Task WaitForStdoutAsync(string text) => WaitForAsync(() => Stdout, "stdout", text, HardTimeout);

    /// <summary>Waits until a line of stdout matches <paramref name="line"/> (whole lines only) and returns the match; fails as <see cref="WaitForStdoutAsync(string)"/> does, after <paramref name="limit"/>.</summary>
    public async Task<Match> WaitForStdoutLineAsync(Regex line, TimeSpan limit)
    {
        Match match = Match.Empty;
        await WaitForAsync(() => (match = line.Match(Stdout)).Success, "stdout", line.ToString(), limit);
        return match;
    }

    /// <summary>Waits until stderr holds <paramref name="text"/>; fails if the process exits or the timeout passes first.</summary>
    public Task WaitForStderrAsync(string text) => WaitForAsync(() => Stderr, "stderr", text, HardTimeout);

    /// <summary>Waits until stderr matches <paramref name="pattern"/>; fails as <see cref="WaitForStderrAsync(string)"/> does, after <paramref name="limit"/>.</summary>
    public Task WaitForStderrMatchAsync(Regex pattern, TimeSpan limit) =>
        WaitForAsync(() => pattern.IsMatch(Stderr), "stderr", pattern.ToString(), limit);

    /// <summary>Waits for the exit, <see cref="HardTimeout"/> or <paramref name="limit"/> at most; on timeout kills the tree and fails. Never a stack trace on stderr.</summary>
    public async Task<ToolResult> WaitForExitAsync(TimeSpan? limit = null)
    {
        TimeSpan bound = limit ?? HardTimeout;
        using var timeout = new CancellationTokenSource(bound);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"'{_name}' did not exit within {bound.TotalSeconds} s; killed it.\n{Describe()}");
        }

        await _readers.WaitAsync(HardTimeout);
        var result = new ToolResult(_process.ExitCode, Stdout, Stderr);
        Assert.False(result.Stderr.Contains("   at ", StringComparison.Ordinal), $"'{_name}' printed a stack trace:\n{result.Stderr}");
        return result;
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private Task WaitForAsync(Func<string> read, string stream, string text, TimeSpan limit) =>
        WaitForAsync(() => read().Contains(text, StringComparison.Ordinal), stream, text, limit);

    private async Task WaitForAsync(Func<bool> said, string stream, string what, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (!said())
        {
            if (_process.HasExited)
            {
                await _readers.WaitAsync(HardTimeout);
                if (said())
                {
                    return;
                }

                throw new InvalidOperationException($"'{_name}' exited ({_process.ExitCode}) before its {stream} said '{what}'.\n{Describe()}");
            }

            if (clock.Elapsed > limit)
            {
                Kill();
                throw new TimeoutException($"'{_name}' did not say '{what}' on {stream} within {limit.TotalSeconds} s; killed it.\n{Describe()}");
            }

            await Task.Delay(15);
        }
    }

    private string Describe() => $"--- stdout\n{Stdout}\n--- stderr\n{Stderr}";

    private void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // exited meanwhile
        }
    }

    private static async Task DrainAsync(Stream stream, StringBuilder into)
    {
        var decoder = Encoding.UTF8.GetDecoder();
        byte[] buffer = new byte[16 * 1024];
        char[] chars = new char[Encoding.UTF8.GetMaxCharCount(buffer.Length)];
        int read;
        while ((read = await stream.ReadAsync(buffer)) > 0)
        {
            int count = decoder.GetChars(buffer, 0, read, chars, 0);
            lock (into)
            {
                into.Append(chars, 0, count);
            }
        }
    }

    /// <summary>The repository's built ossuary.dll (<see cref="RepositoryPaths.Built"/>), or the one OSSUARY_CLI_DLL names.</summary>
    private static string LocateTool()
    {
        // Another build of the tool (an installed one, or an older commit's to show a test failing before its fix).
        if (Environment.GetEnvironmentVariable("OSSUARY_CLI_DLL") is { Length: > 0 } other)
        {
            return File.Exists(other) ? other : throw new InvalidOperationException($"OSSUARY_CLI_DLL names no file: {other}");
        }

        return RepositoryPaths.Built(Path.Combine("src", "Ossuary.Cli"), "ossuary.dll");
    }
}

/// <summary>How a run of the tool ended.</summary>
internal sealed record ToolResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}
