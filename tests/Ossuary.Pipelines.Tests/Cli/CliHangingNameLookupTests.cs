namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// <c>ossuary connect NAME:PORT</c> while the system's resolver waits for a DNS server that never answers
/// (the lookup ends only when the resolver gives up: resolv.conf's timeout times its attempts, minutes
/// here). The connect waited for the lookup whatever its token said: Ctrl+C ended the command only through
/// the CLI's 3 s backstop ("a read or write in progress did not stop within 3 s, so the command was ended
/// without finishing its cleanup"), and --timeout did nothing until the resolver gave up.
/// </summary>
[Collection(CliCollection.Name)]
public class CliHangingNameLookupTests : CliTestBase
{
    private const string AnyKey = "1111111111111111111111111111111111111111111111111111111111111111";

    [Fact]
    public async Task InterruptingAConnectWhoseNameLookupGetsNoAnswerEndsItAtOnce()
    {
        using ToolProcess connect = ToolProcess.StartWithUnansweredResolver(Dir, await ResolvConfAsync(), "connect", "unanswered.example:7400", "--trust", AnyKey);
        await connect.WaitForStderrAsync("resolver asked"); // the lookup is under way, and gets no answer

        await connect.SignalAsync("INT");
        ToolResult result = await connect.WaitForExitAsync();

        Assert.Equal(130, result.ExitCode); // ended by the SIGINT
        Assert.Equal(["ossuary: interrupted"], ToolLines(result));
    }

    [Fact]
    public async Task TheTimeoutEndsAConnectWhoseNameLookupGetsNoAnswer()
    {
        using ToolProcess connect = ToolProcess.StartWithUnansweredResolver(Dir, await ResolvConfAsync(), "connect", "unanswered.example:7400", "--timeout", "3", "--trust", AnyKey);

        ToolResult result = await connect.WaitForExitAsync();

        Assert.Equal(4, result.ExitCode);
        Assert.Equal(["ossuary: cannot connect to unanswered.example:7400: no answer within 3 s (--timeout)"], ToolLines(result));
    }

    private async Task<string> ResolvConfAsync()
    {
        string path = Path.Combine(Dir, "resolv.conf");
        await File.WriteAllTextAsync(path, "nameserver 127.0.0.1\noptions timeout:30 attempts:5\n");
        return path;
    }

    /// <summary>What the tool said on stderr, without the resolver's own line.</summary>
    private static string[] ToolLines(ToolResult result) =>
        result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(line => line != "resolver asked").ToArray();
}
