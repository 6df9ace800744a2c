using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// A standard stream that fails (not one that ends): the message names the stream and keeps the
/// system's reason, which alone would read like the network peer's ("Connection reset by peer").
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliFailingStdioTests : CliTestBase
{
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
        Assert.True(received.ExitCode == 1, received.ToString());
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
