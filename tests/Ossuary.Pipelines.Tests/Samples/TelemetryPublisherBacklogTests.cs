using Microsoft.Extensions.Logging.Testing;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// An ingestion node waits out a NATS outage that catches a batch too large for the connection's
/// buffers: the NATS client then cannot even hand the rest of it to the socket, and says so with a
/// timeout of its own, which is an unanswered publish like any other.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryPublisherBacklogTests
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(150);

    [Fact]
    public async Task ABatchLargerThanTheConnectionsBuffersIsPublishedWhenAFrozenNatsServerComesBack()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_BACKLOG", Subject = "backlog.readings" };
        var logger = new FakeLogger();
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, logger, budget.Token);
        string device = new('c', 64);
        StoredReading[] batch = [.. Enumerable.Range(1, 40_000).Select(seq => new StoredReading(device, seq, "temp", seq, seq))];

        // Frozen, so that nothing drains the socket: some 10 MB of publishes fill the kernel's buffers and
        // the client's, and the client gives up writing the rest (NatsTimeoutException, after 5 s).
        await nats.PauseAsync();
        Task<int> write = publisher.WriteAsync(batch, budget.Token).AsTask();

        // Published again twice (event 1711): the client's timeouts are behind the node, which waits on.
        // Before, the first round's timeout failed the write, and with it the node's store (exit 1).
        while (logger.Collector.GetSnapshot().Count(record => record.Id.Id == 1711) < 2 && !write.IsCompleted)
        {
            await Task.Delay(50, budget.Token);
        }

        await nats.ResumeAsync();
        Assert.Equal(batch.Length, await write);

        // The observer's commands wait behind the 40,000 publishes the server has just been handed: on a loaded
        // machine the client's 5 s default failed the test in the observer's own disposal, after the checks.
        await using var client = new NatsClient(new NatsOpts { Url = nats.Url, CommandTimeout = TimeSpan.FromSeconds(60), RequestTimeout = TimeSpan.FromSeconds(60) });
        INatsJSStream stream = await client.CreateJetStreamContext().GetStreamAsync(options.Stream, cancellationToken: budget.Token);
        Assert.Equal(batch.Length, stream.Info.State.Messages);
    }
}
