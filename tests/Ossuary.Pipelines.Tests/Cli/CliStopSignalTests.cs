namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// A command stopped by a signal (Ctrl+C, SIGTERM, SIGHUP) cleans up, says so, and then ends by that
/// signal, as a program without a handler would: a shell then sees 128 + its number, and bash, which
/// waits for its foreground child before acting on the Ctrl+C it got as well, stops the script
/// instead of going on with its next command (<c>for f in *; do ossuary send "$f" ...; done</c>).
/// </summary>
[Collection(CliCollection.Name)]
public class CliStopSignalTests : CliTestBase
{
    [Theory]
    [InlineData("INT", 130)]
    [InlineData("TERM", 143)]
    [InlineData("HUP", 129)]
    public async Task AnInterruptedSessionSaysSoThenEndsByTheSignalAsAShellExpects(string signal, int shellStatus)
    {
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--echo");
        using ToolProcess client = ToolProcess.StartInterruptible(ToolProcess.AssemblyPath, "ossuary", Dir, "connect", $"127.0.0.1:{ServerPort(server)}", "--trust", ServerKey(server));
        await client.WriteAsync("ping\n");
        await client.WaitForStdoutAsync("ping\n"); // the session is under way, its handlers long installed

        await client.SignalAsync(signal);
        ToolResult result = await client.WaitForExitAsync();

        // .NET reports a child that a signal ended as 128 + the signal's number, as a shell does;
        // exit 1 was a command that handled the signal and chose to fail.
        AssertFails(result, shellStatus, "interrupted");
    }
}
