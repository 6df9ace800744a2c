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
        var link = LinkedPipes.Transparent(out Task relays);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            var crash = new InvalidOperationException("the client application crashed");
            await pair.Client.Output.CompleteAsync(crash);

            OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(pair.Client.Input));
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
            Assert.Same(crash, failed.InnerException);
            Assert.DoesNotContain("server", failed.Message, StringComparison.OrdinalIgnoreCase);
        }

        await relays.Within();
    });

    [Fact]
    public Task AServerThatFailsItsOutputReadsItsOwnFailure() => Run(async () =>
    {
        var link = LinkedPipes.Transparent(out Task relays);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            var crash = new InvalidOperationException("the server application crashed");
            await pair.Server.Output.CompleteAsync(crash);

            OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(pair.Server.Input));
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
            Assert.Same(crash, failed.InnerException);
        }

        await relays.Within();
    });

    private static Task Run(Func<Task> test) => test().Within();
}
