namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// Output that goes nowhere is a failure: the console stream drops a write to a pipe whose reader
/// is gone (EPIPE) without a word, and .NET ignores SIGPIPE, so nothing else would stop an exit 0.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliLostOutputTests : CliTestBase
{
    [Fact]
    public async Task KeygenToAStdoutWhoseReaderIsGoneFailsRatherThanLoseTheSecretKey()
    {
        // ossuary keygen -o - | a-reader-that-has-exited: the only copy of the secret is gone.
        ToolResult result = await RunWithClosedStdoutAsync(null, "keygen", "-o", "-");

        AssertFails(result, 1, "cannot write the secret key to standard output");
    }

    [Fact]
    public async Task PubkeyToAStdoutWhoseReaderIsGoneFails()
    {
        WriteKeyFile("client.key");
        string secret = File.ReadAllText(Path.Combine(Dir, "client.key"));

        ToolResult result = await RunWithClosedStdoutAsync(secret, "pubkey", "-");

        AssertFails(result, 1, "cannot write the public key to standard output");
    }

    [Fact]
    public async Task DemoToAStdoutWhoseReaderIsGoneFails()
    {
        ToolResult result = await RunWithClosedStdoutAsync(null, "demo");

        AssertFails(result, 1, "cannot write the demo's report to standard output");
    }

    [Fact]
    public async Task BenchToAStdoutWhoseReaderIsGoneFailsButKeepsItsJson()
    {
        ToolResult result = await RunWithClosedStdoutAsync(null, "bench", "--quick", "--sections", "CryptoBound", "--json", "bench.json");

        AssertFails(result, 1, "cannot write the benchmark table to standard output");
        Assert.Contains("ossuary.handshakes.crypto-bound", File.ReadAllText(Path.Combine(Dir, "bench.json")), StringComparison.Ordinal);
    }

    private async Task<ToolResult> RunWithClosedStdoutAsync(string? stdin, params string[] args)
    {
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        ToolProcess tool = StartGated(stdout =>
        {
            stdout.Close();
            closed.SetResult();
            return Task.CompletedTask;
        }, args);
        await closed.Task.WaitAsync(ToolProcess.HardTimeout);
        await tool.WriteAsync("go\n" + stdin); // the tool starts now, its stdout already without a reader
        tool.CloseStdin();
        return await tool.WaitForExitAsync();
    }
}
