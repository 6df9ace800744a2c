using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// A standard stream that fails (not one that ends): the message names the stream and keeps the
/// system's reason, which alone would read like the network peer's ("Connection reset by peer").
/// And one the shell closed (<c>&lt;&amp;-</c>, <c>&gt;&amp;-</c>), whose number the runtime's own
/// pipe takes as it starts: an empty stdin where it carries a session, refused where it carries a
/// file or a key; a stdout that fails.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliFailingStdioTests : CliTestBase
{
    [Fact]
    public async Task TheErrorNumbersTheToolTellsApartAreThoseOfTheSystemItRunsOn()
    {
        // EAGAIN, on which a read of a non-blocking stdin or a write to a non-blocking stdout waits,
        // was Linux's 11 everywhere: on macOS, where it is 35 (and 11 is EDEADLK), such a read or
        // write failed the session ("Resource temporarily unavailable") instead of waiting. EDQUOT
        // likewise (122 on Linux, 69 on macOS). The system's own numbers come from Python's errno module.
        using var python = Process.Start(new ProcessStartInfo("python3", ["-c", "import errno; print(errno.EAGAIN, errno.EDQUOT)"]) { RedirectStandardOutput = true })!;
        string[] system = (await python.StandardOutput.ReadToEndAsync()).Split(' ', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        await python.WaitForExitAsync();
        Assembly tool = Assembly.LoadFrom(ToolProcess.AssemblyPath);

        Assert.Equal(int.Parse(system[0], CultureInfo.InvariantCulture), Errno(tool, "Ossuary.Cli.NativeStdio", "WouldBlock"));
        Assert.Equal(int.Parse(system[1], CultureInfo.InvariantCulture), Errno(tool, "Ossuary.Cli.SystemFailure", "QuotaExceeded"));

        static int Errno(Assembly tool, string type, string name) =>
            (int)tool.GetType(type, throwOnError: true)!.GetField(name, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)!.GetValue(null)!;
    }

    [Fact]
    public async Task AConnectWhoseStdinFailsMidStreamSaysItWasStdinAndTheListenerFails()
    {
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "forever");
        server.CloseStdin();
        using var stdin = new ResettingStdin();
        ToolProcess client = StartRedirected(stdin.Redirection, "connect", $"127.0.0.1:{ServerPort(server)}", "--trust", ServerKey(server));
        await stdin.SendAsync("the first half\n");
        await server.WaitForStdoutAsync("the first half\n");

        stdin.Reset();
        ToolResult clientResult = await client.WaitForExitAsync();
        ToolResult serverResult = await server.WaitForExitAsync();

        AssertFails(clientResult, 1, "cannot read standard input");
        Assert.True(serverResult.ExitCode == 1, serverResult.ToString());
    }

    [Fact]
    public async Task ASendWhoseStdinFailsMidStreamSaysItWasStdinAndNothingIsSaved()
    {
        string inbox = Path.Combine(Dir, "inbox");
        Directory.CreateDirectory(inbox);
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        using var stdin = new ResettingStdin();
        ToolProcess sender = StartRedirected(stdin.Redirection, "send", "-", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver), "--name", "half.bin");
        await stdin.SendAsync(new string('x', 100_000));
        await receiver.WaitForStderrAsync("connection from");

        stdin.Reset();
        ToolResult sent = await sender.WaitForExitAsync();
        ToolResult received = await receiver.WaitForExitAsync();

        AssertFails(sent, 1, "cannot read standard input");
        // Told with Disconnect (error): the sender's disposal closed cleanly, and the receiver learnt
        // only that the chunks stopped ("the sender closed the connection before the end of the file").
        AssertFails(received, 1, "the sender ended the connection with an error during the transfer (it failed or was stopped)", "removed the partial file");
        Assert.Empty(Directory.GetFileSystemEntries(inbox));
    }

    [Fact]
    public async Task AConnectWhoseStdoutIsFullSaysSoRatherThanBrokenPipe()
    {
        // ossuary connect ... > file, on a full disk
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "forever");
        await server.WriteAsync("no room for this\n");
        server.CloseStdin();
        ToolProcess client = StartRedirected(">/dev/full", "connect", $"127.0.0.1:{ServerPort(server)}", "--trust", ServerKey(server), "--wait", "forever");
        client.CloseStdin();

        ToolResult clientResult = await client.WaitForExitAsync();
        ToolResult serverResult = await server.WaitForExitAsync();

        AssertFails(clientResult, 1, "cannot write to standard output", "No space left on device");
        Assert.DoesNotContain("broken pipe", clientResult.Stderr, StringComparison.Ordinal);
        Assert.True(serverResult.ExitCode == 1, serverResult.ToString());
    }

    [Fact]
    public async Task AStderrThatIsFullOrClosedCostsOnlyTheMessages()
    {
        // ossuary ... 2>>log on a full disk, or 2>&- (a daemon's stderr closed, whose number the
        // runtime's own pipe then takes): a message that could not be written threw out of the command,
        // and again out of the handler that reports failures, and the runtime aborted the process
        // (SIGABRT, exit 134): keygen after it had made its key, send after the receiver had confirmed
        // the file, a server as it announced its port.
        ToolProcess keygen = StartRedirected("2>/dev/full", "keygen", "-o", "full.key");
        keygen.CloseStdin();
        ToolResult made = await keygen.WaitForExitAsync();
        AssertSucceeds(made);
        Assert.Matches("^[0-9a-f]{64}\n$", made.Stdout);

        byte[] payload = System.Security.Cryptography.RandomNumberGenerator.GetBytes(100_000);
        File.WriteAllBytes(Path.Combine(Dir, "payload.bin"), payload);
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        ToolProcess sender = StartRedirected("2>&-", "send", "payload.bin", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver));
        sender.CloseStdin();
        ToolResult sent = await sender.WaitForExitAsync();
        ToolResult received = await receiver.WaitForExitAsync();

        AssertSucceeds(sent);
        AssertSucceeds(received);
        Assert.Equal(payload, File.ReadAllBytes(Path.Combine(Dir, "inbox", "payload.bin")));
    }

    [Fact]
    public async Task AReceiveOnlyListenerWhoseStdinIsClosedEndsCleanlyWithEverything()
    {
        // ossuary listen --once <&- > file: a closed stdin is an empty one, not one that never ends.
        ToolProcess server = StartRedirected("<&-", "listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "forever");
        await WaitUntilListeningAsync(server);
        ToolProcess client = Start("connect", $"127.0.0.1:{ServerPort(server)}", "--trust", ServerKey(server), "--wait", "0.3");
        await client.WriteAsync("all of it\n");
        await server.WaitForStdoutAsync("all of it\n");
        client.CloseStdin();

        ToolResult clientResult = await client.WaitForExitAsync();
        ToolResult serverResult = await server.WaitForExitAsync();

        AssertSucceeds(clientResult);
        AssertSucceeds(serverResult);
        Assert.Equal("all of it\n", serverResult.Stdout);
    }

    [Fact]
    public async Task AConnectWhoseStdinAndStdoutAreClosedFailsRatherThanLoseWhatItReceives()
    {
        // With both closed, the runtime's own pipe takes descriptors 0 and 1: stdout is its write end.
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "forever");
        await server.WriteAsync("nobody reads this\n");
        server.CloseStdin();
        ToolProcess client = StartRedirected("<&- >&-", "connect", $"127.0.0.1:{ServerPort(server)}", "--trust", ServerKey(server), "--wait", "forever");

        ToolResult clientResult = await client.WaitForExitAsync();
        ToolResult serverResult = await server.WaitForExitAsync();

        AssertFails(clientResult, 1, "cannot write to standard output: it is closed");
        Assert.True(serverResult.ExitCode == 1, serverResult.ToString());
    }

    [Fact]
    public async Task AFileOrKeyFromAClosedStdinIsBadInputNotAWaitForever()
    {
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1");
        ToolProcess sender = StartRedirected("<&-", "send", "-", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver));
        ToolProcess pubkey = StartRedirected("<&-", "pubkey", "-");

        // Bounds against the hang this was, not a measure: either exits at once.
        ToolResult sent = await sender.WaitForExitAsync(TimeSpan.FromSeconds(20));
        ToolResult printed = await pubkey.WaitForExitAsync(TimeSpan.FromSeconds(20));

        AssertFails(sent, 2, "standard input is closed; the file to send is read from it");
        AssertFails(printed, 2, "standard input is closed; the secret key is read from it");
        Assert.False(receiver.HasExited, "the sender connected although it had nothing to send");
    }

    /// <summary>A stdin that is a TCP socket whose far end (here) sends some bytes, then a reset: read(0) fails with ECONNRESET.</summary>
    private sealed class ResettingStdin : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private Socket? _socket;

        public ResettingStdin() => _listener.Start();

        public string Redirection => $"0<>/dev/tcp/127.0.0.1/{((IPEndPoint)_listener.LocalEndpoint).Port}";

        public async Task SendAsync(string text)
        {
            _socket ??= await _listener.AcceptSocketAsync().WaitAsync(ToolProcess.HardTimeout);
            await _socket.SendAsync(Encoding.ASCII.GetBytes(text));
        }

        public void Reset()
        {
            _socket!.LingerState = new LingerOption(true, 0); // close with RST
            _socket.Close();
        }

        public void Dispose()
        {
            _socket?.Dispose();
            _listener.Stop();
        }
    }
}
