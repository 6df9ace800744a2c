using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// Output that goes nowhere is a failure: the console stream drops a write to a pipe whose reader
/// is gone (EPIPE) without a word, and .NET ignores SIGPIPE, so nothing else would stop an exit 0.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliLostOutputTests : CliTestBase
{
    [Fact]
    public async Task KeygenWithStdoutAndStderrInOneFileKeepsThePublicKey()
    {
        // ossuary keygen -o secret.key > log 2>&1: stdout was a file stream writing at an offset of its
        // own (pwrite), which the shared offset never followed, so the stderr line went over the key.
        ToolResult made = await StartRedirected(">log 2>&1", "keygen", "-o", "secret.key").WaitForExitAsync();

        Assert.True(made.ExitCode == 0, made.ToString());
        ToolResult printed = await RunAsync("pubkey", "secret.key");
        AssertSucceeds(printed);
        Assert.Equal($"{printed.Stdout}ossuary: wrote secret key to secret.key; share the public key above\n", File.ReadAllText(Path.Combine(Dir, "log")));
    }

    [Fact]
    public async Task AListenerWithStdoutAndStderrInOneFileKeepsWhatItReceived()
    {
        // ossuary listen --once > log 2>&1: the closing line on stderr went over the bytes received.
        string log = Path.Combine(Dir, "log");
        ToolProcess server = StartRedirected(">log 2>&1", "listen", "--port", "0", "--bind", "127.0.0.1", "--once");
        server.CloseStdin();
        Stopwatch waited = Stopwatch.StartNew();
        Match announced;
        while (!(announced = Regex.Match(File.Exists(log) ? File.ReadAllText(log) : "", @"listening on 127\.0\.0\.1:([0-9]+) .*server key ([0-9a-f]{64})")).Success)
        {
            Assert.False(server.HasExited, $"the server ended before it listened:\n{(File.Exists(log) ? File.ReadAllText(log) : "")}");
            Assert.True(waited.Elapsed < ToolProcess.HardTimeout, "the server did not listen in time");
            await Task.Delay(10);
        }

        ToolResult sent = await RunWithInputAsync("a line the server must keep\n", "connect", $"127.0.0.1:{announced.Groups[1].Value}", "--trust", announced.Groups[2].Value);
        ToolResult served = await server.WaitForExitAsync();

        Assert.True(sent.ExitCode == 0, sent.ToString());
        Assert.True(served.ExitCode == 0, served.ToString());
        string written = File.ReadAllText(log);
        Assert.Contains("client key anonymous\na line the server must keep\nossuary: connection from ", written, StringComparison.Ordinal);
        Assert.EndsWith(" closed\n", written, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KeygenToAStdoutWhoseReaderIsGoneFailsRatherThanLoseTheSecretKey()
    {
        // ossuary keygen -o - | a-reader-that-has-exited: the only copy of the secret is gone.
        ToolResult result = await RunWithClosedStdoutAsync(null, "keygen", "-o", "-");

        AssertFails(result, 1, "cannot write the secret key to standard output");
    }

    [Fact]
    public async Task KeygenToAFileWhosePublicKeyCannotBePrintedSaysTheKeyFileWasWritten()
    {
        // ossuary keygen -o server.key | a-reader-that-has-exited: the key file is made all the same,
        // and a run again would find it there ("already exists").
        ToolResult result = await RunWithClosedStdoutAsync(null, "keygen", "-o", "server.key");

        AssertFails(result, 1, "cannot write the public key to standard output", "wrote the secret key to 'server.key'", "ossuary pubkey server.key");
        Assert.True(File.Exists(Path.Combine(Dir, "server.key")));
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
