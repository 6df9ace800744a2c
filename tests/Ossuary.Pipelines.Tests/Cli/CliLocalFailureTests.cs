namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// A netcat side that stops for a reason of its own (interrupted, its stdout or stdin failing) has
/// not delivered everything: its peer must not take the end for a clean close and exit 0.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliLocalFailureTests : CliTestBase
{
    [Fact]
    public async Task AListenerWhoseSendingClientIsInterruptedDoesNotReportACleanClose()
    {
        // cat big.bin | ossuary connect ..., stopped with Ctrl+C half way: the rest never comes.
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "forever");
        server.CloseStdin(); // a server that only receives
        ToolProcess client = Start("connect", $"127.0.0.1:{ServerPort(server)}", "--trust", ServerKey(server));
        await client.WriteAsync("the first half\n");
        await server.WaitForStdoutAsync("the first half\n");

        await client.SignalAsync("TERM");
        ToolResult clientResult = await client.WaitForExitAsync();
        ToolResult serverResult = await server.WaitForExitAsync();

        AssertFails(clientResult, 143, "interrupted"); // ended by the SIGTERM, once it had told the server
        Assert.True(serverResult.ExitCode == 1, $"the server took an interrupted client for a clean close:\n{serverResult}");
    }

    [Fact]
    public async Task AClientWhoseServerIsInterruptedMidStreamSaysItFailedNotThatItRefusedTheKey()
    {
        // ossuary listen < big.bin, stopped with Ctrl+C half way   +   ossuary connect ... > out
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "forever");
        await server.WriteAsync("the first half\n");
        ToolProcess client = Start("connect", $"127.0.0.1:{ServerPort(server)}", "--trust", ServerKey(server), "--wait", "forever");
        client.CloseStdin();
        await client.WaitForStdoutAsync("the first half\n");

        await server.SignalAsync("TERM");
        ToolResult serverResult = await server.WaitForExitAsync();
        ToolResult clientResult = await client.WaitForExitAsync();

        AssertFails(serverResult, 143, "interrupted");
        AssertFails(clientResult, 1, "the peer ended the connection with an error after it had sent data (it failed or was stopped)");
        Assert.DoesNotContain("--key", clientResult.Stderr, StringComparison.Ordinal); // the server took this client's key long ago
    }

    [Fact]
    public async Task AListenerWhoseReceivingClientIsInterruptedSaysTheClientEndedItWithAnError()
    {
        // ossuary listen --once < big.bin   +   ossuary connect ... > out, stopped with Ctrl+C half way:
        // the server has received nothing, and only the client's Disconnect (error) says why it ended.
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "forever");
        await server.WriteAsync("the first half\n");
        ToolProcess client = Start("connect", $"127.0.0.1:{ServerPort(server)}", "--trust", ServerKey(server), "--wait", "forever");
        client.CloseStdin();
        await client.WaitForStdoutAsync("the first half\n");

        await client.SignalAsync("TERM");
        ToolResult clientResult = await client.WaitForExitAsync();
        ToolResult serverResult = await server.WaitForExitAsync();

        AssertFails(clientResult, 143, "interrupted");
        // Not the library's bare "Connection failed.", which named neither whose failure it was nor what it cost.
        AssertFails(serverResult, 1, "the client ended the connection with an error (it failed or was stopped); what was in flight to it may not have arrived");
    }

    [Fact]
    public async Task AListenerWhoseClientCannotWriteItsStdoutDoesNotReportACleanClose()
    {
        // ossuary listen --once < file   +   ossuary connect ... | (a reader that is gone)
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "forever");
        var stdoutClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        ToolProcess client = Start(stdout =>
        {
            stdout.Close();
            stdoutClosed.SetResult();
            return Task.CompletedTask;
        }, "connect", $"127.0.0.1:{ServerPort(server)}", "--trust", ServerKey(server), "--wait", "forever");
        client.CloseStdin();
        await stdoutClosed.Task.WaitAsync(ToolProcess.HardTimeout); // before anything is there to write

        await server.WriteAsync("never delivered\n");
        server.CloseStdin();
        ToolResult clientResult = await client.WaitForExitAsync();
        ToolResult serverResult = await server.WaitForExitAsync();

        AssertFails(clientResult, 1, "standard output");
        Assert.True(serverResult.ExitCode == 1, $"the server took a client that lost its data for a clean close:\n{serverResult}");
    }
}
