using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// An application that ends its output with an error ends the connection itself: its own input
/// then says so, with that error, instead of reporting the peer's failure (for a client, a server
/// that refused its key) and losing the application's reason.
/// </summary>
public class OwnFailureReasonTests
{
    [Fact]
    public Task AClientThatFailsItsOutputReadsItsOwnFailureNotTheServersRefusal() => Run(async () =>
    {
        OssuaryException failed = await OwnFailureAsync(pair => pair.Client, "the client application crashed");
        Assert.DoesNotContain("server", failed.Message, StringComparison.OrdinalIgnoreCase);
    });

    [Fact]
    public Task AServerThatFailsItsOutputReadsItsOwnFailure() => Run(() => OwnFailureAsync(pair => pair.Server, "the server application crashed"));

    /// <summary>Fails one end's output with an exception and returns what that end's own input then throws.</summary>
    private static async Task<OssuaryException> OwnFailureAsync(Func<InMemoryPair, OssuaryDuplexPipe> end, string crashMessage)
    {
        var link = LinkedPipes.Transparent(out Task relays);
        OssuaryException failed;
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            var crash = new InvalidOperationException(crashMessage);
            await end(pair).Output.CompleteAsync(crash);

            failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(end(pair).Input));
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
            Assert.Same(crash, failed.InnerException);
        }

        await relays.Within();
        return failed;
    }

    private static Task Run(Func<Task> test) => test().Within();
}
