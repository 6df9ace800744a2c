using System.Net;
using Microsoft.Extensions.Logging.Testing;
using NATS.Client.JetStream;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// What an ingestion node counts as published and as a duplicate, when JetStream's acknowledgements
/// are lost and the node publishes again: the stop line (<c>N reading(s) published, M resent and
/// already published</c>) is what an operator checks against what consume stored.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryPublisherAccountingTests
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    [Fact]
    public Task ARetryThatFindsItsOwnFirstPublishCountsAsPublishedNotAsADuplicate() => RetryAsync().WaitAsync(HardLimit);

    private static async Task RetryAsync()
    {
        const int Readings = 3;
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        await using var proxy = new HoldingProxy(new IPEndPoint(IPAddress.Loopback, new Uri(nats.Url).Port));
        var options = new JetStreamOptions { Url = $"nats://127.0.0.1:{proxy.EndPoint.Port}", Stream = "TELEMETRY_COUNTED", Subject = "counted.readings" };
        var logger = new FakeLogger();
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, logger, budget.Token);
        StoredReading[] batch = Enumerable.Range(1, Readings).Select(seq => new StoredReading(new string('e', 64), seq, "temp", seq, seq)).ToArray();

        // JetStream stores the readings, their acknowledgements come after the node stopped waiting
        // (event 1711), and the node publishes them again: JetStream answers "duplicate" to what is
        // the node's own first publish. Before, those were counted as a device's resend: the stop
        // line said 0 published and 3 resent, for three readings the stream got once, from this node.
        proxy.HoldReplies();
        Task<int> write = publisher.WriteAsync(batch, budget.Token).AsTask();
        while (!logger.Collector.GetSnapshot().Any(record => record.Id.Id == 1711))
        {
            await Task.Delay(50, budget.Token);
        }

        proxy.ReleaseReplies();
        Assert.Equal(Readings, await write);
        Assert.Equal(0, publisher.Duplicates);

        // A device's resend of the same readings, answered at the first publish, is a duplicate.
        Assert.Equal(0, await publisher.WriteAsync(batch, budget.Token));
        Assert.Equal(Readings, publisher.Duplicates);

        await using var client = new NatsClient(nats.Url);
        INatsJSStream stream = await client.CreateJetStreamContext().GetStreamAsync(options.Stream, cancellationToken: budget.Token);
        Assert.Equal(Readings, (int)stream.Info.State.Messages);
    }
}
