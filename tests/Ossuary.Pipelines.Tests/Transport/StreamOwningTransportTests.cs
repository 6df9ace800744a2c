using System.Reflection;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A server whose transport owns its stream, made the way a user holding a <c>NetworkStream</c> would
/// make it (<c>PipeReader.Create(stream)</c> and <c>PipeWriter.Create(stream)</c>, their defaults):
/// completing the transport's input there disposes the stream, and with it the output.
/// </summary>
public class StreamOwningTransportTests
{
    [Fact]
    public Task AServerThatReceivesAForgedFrameStillTellsTheClient() => Run(async () =>
    {
        var link = new LinkedPipes();
        Task upstream = PacketRelay.ForwardAsync(link.Upstream.From, link.Upstream.To, PacketRelay.ForgingDataFrame(2)); // the client's second frame
        Task downstream = PacketRelay.ForwardAsync(link.Downstream.From, link.Downstream.To);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link, serverTransport: DuplexPipeStream.OwningTransport))
        {
            await pair.Client.Output.WriteAsync("genuine"u8.ToArray());
            Assert.Equal("genuine"u8.ToArray(), await PipeReads.ReadExactlyAsync(pair.Server.Input, 7));
            await pair.Client.Output.WriteAsync("forged!"u8.ToArray());

            OssuaryException forged = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(pair.Server.Input));
            Assert.Equal(OssuaryErrorReason.DecryptionFailed, forged.Reason);

            // The server's Disconnect (error) reaches the client before the stream goes: not a
            // transport that merely ended (Truncated), which is what the client saw while the
            // failed input's completion disposed the stream under the farewell.
            OssuaryException told = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(pair.Client.Input));
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, told.Reason);
        }

        await Task.WhenAll(upstream, downstream).Within();
    });

    [Fact]
    public Task AServerThatStopsReadingCanStillWrite() => Run(async () =>
    {
        LinkedPipes link = LinkedPipes.Transparent(out Task relays);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link, serverTransport: DuplexPipeStream.OwningTransport))
        {
            await pair.Server.Input.CompleteAsync(); // done reading, not done writing

            // A frame the server no longer reads ends its inbound loop, which then completed the
            // transport's input and so disposed the stream under the output. The loop's last act on
            // the way out wakes the output (which has nothing to send), and the output then reports
            // what it has sent to any flush waiting: a wait for a byte never written sees that report,
            // and from then on the loop is past the point where it took the stream with it.
            using var stop = new CancellationTokenSource();
            Task neverSent = pair.Server.WhenSentAsync(pair.Server.PlaintextWritten + 1, stop.Token);
            object? armed = await SentSignalAsync(pair.Server, signal => signal is not null);
            await pair.Client.Output.WriteAsync("ignored"u8.ToArray()).AsTask().Within();
            await SentSignalAsync(pair.Server, signal => !ReferenceEquals(signal, armed));
            await stop.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => neverSent.Within());

            await pair.Server.Output.WriteAsync("still here"u8.ToArray()).AsTask().Within();
            Assert.Equal("still here"u8.ToArray(), await PipeReads.ReadExactlyAsync(pair.Client.Input, 10));
            await pair.Server.Output.WriteAsync("and here"u8.ToArray()).AsTask().Within();
            Assert.Equal("and here"u8.ToArray(), await PipeReads.ReadExactlyAsync(pair.Client.Input, 8));
        }

        await relays.Within();
    });

    [Fact]
    public Task AServerThatEndsTheConnectionSeesItEndCleanly() => Run(async () =>
    {
        LinkedPipes link = LinkedPipes.Transparent(out Task relays);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link, serverTransport: DuplexPipeStream.OwningTransport))
        {
            await pair.Server.Output.WriteAsync("bye"u8.ToArray()).AsTask().Within();
            await pair.Server.Output.CompleteAsync(); // Disconnect: the stream goes with the output

            Assert.Equal("bye"u8.ToArray(), await PipeReads.ReadToEndAsync(pair.Client.Input));

            // Its own read ends as the connection did, cleanly; it used to fail as a fault of this side
            // (loud) because the read still waiting on the stream threw when the output closed it.
            Assert.Empty(await PipeReads.ReadToEndAsync(pair.Server.Input));
            Assert.Null(pair.Server.InputFailure);
        }

        await relays.Within();
    });

    /// <summary>Waits until the signal a flush of <paramref name="connection"/> waits on (its <c>_sentSignal</c>) satisfies <paramref name="condition"/>; returns it.</summary>
    private static async Task<object?> SentSignalAsync(OssuaryDuplexPipe connection, Func<object?, bool> condition)
    {
        FieldInfo field = typeof(OssuaryDuplexPipe).GetField("_sentSignal", BindingFlags.Instance | BindingFlags.NonPublic)!;
        var waited = System.Diagnostics.Stopwatch.StartNew();
        object? signal;
        while (!condition(signal = field.GetValue(connection)))
        {
            Assert.True(waited.Elapsed < TestTimeout.Default, "the flush's signal did not change");
            await Task.Delay(10);
        }

        return signal;
    }

    private static Task Run(Func<Task> test) => test().Within();
}
