using System.IO.Pipelines;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// Bytes an application wrote before completing its output with an error reach the peer before the
/// Disconnect (error), as the peer's bytes reach us before its failure: a pipe completed with an
/// exception throws it from the next read, so the adapter used to drop whatever it had not yet sealed.
/// </summary>
public class FailingOutputDeliveryTests
{
    [Fact]
    public Task BytesFlushedBeforeAFailedCompletionArriveBeforeTheFailure() => Run(async () =>
    {
        var link = LinkedPipes.Transparent(out Task relays);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            FlushResult flushed = await pair.Server.Output.WriteAsync("last words"u8.ToArray());
            Assert.False(flushed.IsCompleted);
            await pair.Server.Output.CompleteAsync(new InvalidOperationException("the server application crashed"));

            Assert.Equal("last words"u8.ToArray(), await PipeReads.ReadExactlyAsync(pair.Client.Input, 10).Within());
            OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(pair.Client.Input));
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
        }

        await relays.Within();
    });

    [Fact]
    public Task BytesWrittenButNotFlushedBeforeAFailedCompletionArriveBeforeTheFailure() => Run(async () =>
    {
        var link = LinkedPipes.Transparent(out Task relays);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            "last words"u8.CopyTo(pair.Server.Output.GetSpan(10));
            pair.Server.Output.Advance(10);
            await pair.Server.Output.CompleteAsync(new InvalidOperationException("the server application crashed"));

            Assert.Equal("last words"u8.ToArray(), await PipeReads.ReadExactlyAsync(pair.Client.Input, 10).Within());
            OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(pair.Client.Input));
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
        }

        await relays.Within();
    });

    private static Task Run(Func<Task> test) => test().Within();
}
