using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Testing;
using NATS.Client.JetStream;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Load;
using Ossuary.Samples.Telemetry.Server;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>Past one machine: two ingestion nodes publish to a real nats-server's JetStream, one consumer stores, every reading exactly once.</summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryJetStreamTests : IDisposable
{
    // Within the last hour, for --since 1h; the same for every run of a test, so that a run's resends are the readings the earlier run sent.
    private static readonly DateTimeOffset ReadingsTaken = DateTimeOffset.UtcNow.AddMinutes(-1);

    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-js-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task DevicesMovedBetweenTwoNodesAndResendingAreStoredExactlyOnce() => MoveDevicesAsync().WaitAsync(HardLimit);

    [Fact]
    public async Task APublisherWaitsOutAJetStreamOutageAndPublishesEveryReading()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_OUTAGE", Subject = "outage.readings" };
        var logger = new FakeLogger();
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, logger, budget.Token);
        string device = new('a', 64);

        // NATS stops answering for longer than a request's timeout (the publisher gave up waiting for
        // an answer and says it publishes again, event 1711), then comes back: the batch is published
        // late, not failed (which stops the node and loses what it has queued).
        await nats.PauseAsync();
        Task write = publisher.WriteAsync(Enumerable.Range(1, 5).Select(seq => new StoredReading(device, seq, "temp", seq, seq)).ToArray(), budget.Token).AsTask();
        while (!logger.Collector.GetSnapshot().Any(record => record.Id.Id == 1711) && !write.IsCompleted)
        {
            await Task.Delay(50, budget.Token);
        }

        Assert.False(write.IsCompleted, $"the write ended during the outage instead of waiting it out: {write.Exception?.InnerException}");

        // Said once at Warning, the outage's further retries at Debug: before, each retry (every 5 s
        // for as long as the outage lasted) was another Warning.
        while (logger.Collector.GetSnapshot().Count(record => record.Id.Id == 1711) < 3 && !write.IsCompleted)
        {
            await Task.Delay(50, budget.Token);
        }

        Assert.Equal(
            [Microsoft.Extensions.Logging.LogLevel.Warning, Microsoft.Extensions.Logging.LogLevel.Debug, Microsoft.Extensions.Logging.LogLevel.Debug],
            logger.Collector.GetSnapshot().Where(record => record.Id.Id == 1711).Take(3).Select(record => record.Level));
        await nats.ResumeAsync();
        await write;

        await using var client = new NatsClient(nats.Url);
        INatsJSStream stream = await client.CreateJetStreamContext().GetStreamAsync(options.Stream, cancellationToken: budget.Token);
        Assert.Equal(5, stream.Info.State.Messages);
    }

    [Fact]
    public async Task AReadingWithoutASequenceNumberWhoseAcknowledgementWasLostIsStoredOnce()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        await using var proxy = new HoldingProxy(new IPEndPoint(IPAddress.Loopback, new Uri(nats.Url).Port));
        var options = new JetStreamOptions { Url = $"nats://127.0.0.1:{proxy.EndPoint.Port}", Stream = "TELEMETRY_LOST_ACK", Subject = "lostack.readings" };
        var logger = new FakeLogger();
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, logger, budget.Token);

        // JetStream stores the reading, but its acknowledgement arrives after the publisher stopped
        // waiting for it; the node publishes the reading again (event 1711), and that one is answered.
        proxy.HoldReplies();
        Task write = publisher.WriteAsync([new StoredReading(new string('b', 64), null, "temp", 21.5, 1_000)], budget.Token).AsTask();
        while (!logger.Collector.GetSnapshot().Any(record => record.Id.Id == 1711))
        {
            await Task.Delay(50, budget.Token);
        }

        proxy.ReleaseReplies();
        await write;

        await using var client = new NatsClient(nats.Url);
        INatsJSStream stream = await client.CreateJetStreamContext().GetStreamAsync(options.Stream, cancellationToken: budget.Token);
        Assert.Equal(1, stream.Info.State.Messages);

        // JetStream's "duplicate" answered the node's own retry: published once, by this node, not a device's resend.
        Assert.Equal(0, publisher.Duplicates);
    }

    [Fact]
    public async Task AReadingStoredByTheConsumerLeavesTheStream()
    {
        // JetStream is the queue between the nodes and the store, not a second copy of the database:
        // a stream that kept every stored reading grew by the fleet's whole rate until the NATS
        // server's disk was full, and then every node failed its publishes and stopped.
        const int Readings = 20;
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_DRAINED", Subject = "drained.readings" };
        string device = new('c', 64);
        await using (JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token))
        {
            await publisher.WriteAsync(Enumerable.Range(1, Readings).Select(seq => new StoredReading(device, seq, "temp", seq, seq)).ToArray(), budget.Token);
        }

        string database = Path.Combine(_directory, "drained.db");
        await using SqliteReadingStore store = SqliteReadingStore.Open(database);
        await ConsumeAsync(new JetStreamStoreConsumer(options, store, NullLogger.Instance), Readings, budget.Token);

        Assert.Equal(Readings, ReadingQueries.Totals(database).Single().Readings);

        // Once JetStream has the acknowledgements (the ack floor at the last reading), nothing is
        // left in the stream. The guard only bounds the look at the acknowledgements.
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();
        using var guard = CancellationTokenSource.CreateLinkedTokenSource(budget.Token);
        guard.CancelAfter(TimeSpan.FromSeconds(20));
        while ((await js.GetConsumerAsync(options.Stream, options.Consumer, budget.Token)).Info.AckFloor?.StreamSeq < Readings && !guard.IsCancellationRequested)
        {
            await Task.Delay(50, CancellationToken.None);
        }

        INatsJSStream stream = await js.GetStreamAsync(options.Stream, cancellationToken: budget.Token);
        while (stream.Info.State.Messages > 0 && !guard.IsCancellationRequested)
        {
            await Task.Delay(50, CancellationToken.None);
            stream = await js.GetStreamAsync(options.Stream, cancellationToken: budget.Token);
        }

        Assert.True(stream.Info.State.Messages == 0, $"the stream still holds {stream.Info.State.Messages} of the {Readings} readings the store has");
    }

    [Fact]
    public async Task AStreamAnEarlierVersionMadeIsStillUsedAndTheOperatorIsToldToReplaceIt()
    {
        // nats-server cannot turn a stream that keeps its messages into a work queue in place. Failing
        // on it would stop every node and consume together on upgrade, and consume is what must empty
        // the old stream before it can be replaced.
        const int Readings = 3;
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_OLD", Subject = "old.readings" };
        await using (var client = new NatsClient(nats.Url))
        {
            await client.CreateJetStreamContext().CreateStreamAsync(new NATS.Client.JetStream.Models.StreamConfig(options.Stream, [options.Subject + ".>"]), budget.Token);
        }

        var nodeLog = new FakeLogger();
        await using (JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, nodeLog, budget.Token))
        {
            await publisher.WriteAsync(Enumerable.Range(1, Readings).Select(seq => new StoredReading(new string('d', 64), seq, "temp", seq, seq)).ToArray(), budget.Token);
        }

        var consumerLog = new FakeLogger();
        string database = Path.Combine(_directory, "old.db");
        await using SqliteReadingStore store = SqliteReadingStore.Open(database);
        await ConsumeAsync(new JetStreamStoreConsumer(options, store, consumerLog), Readings, budget.Token);

        Assert.Equal(Readings, ReadingQueries.Totals(database).Single().Readings);

        // What can change in place without losing a reading has: discard new (it had no limits), and the window.
        await using (var client = new NatsClient(nats.Url))
        {
            var config = (await client.CreateJetStreamContext().GetStreamAsync(options.Stream, cancellationToken: budget.Token)).Info.Config;
            Assert.Equal((NATS.Client.JetStream.Models.StreamConfigDiscard.New, options.DuplicateWindow), (config.Discard, config.DuplicateWindow));
        }

        Assert.All([nodeLog, consumerLog], log => Assert.Contains(log.Collector.GetSnapshot(), record => record.Id.Id == 1712 && record.Level == Microsoft.Extensions.Logging.LogLevel.Warning && record.Message.Contains("nats stream rm TELEMETRY_OLD", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task AConsumerStoppedBeforeItsStreamIsSetUpStopsQuietly()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, "stopped.db"));
        var consumer = new JetStreamStoreConsumer(new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_STOPPED" }, store, NullLogger.Instance);

        // Stopping is not a failure, whenever it comes: before, a stop during set-up surfaced as a
        // TaskCanceledException, which hid whatever had made the caller stop.
        await consumer.RunAsync(new CancellationToken(canceled: true)).WaitAsync(HardLimit);

        Assert.Equal(0, consumer.Stored);
    }

    [Fact]
    public async Task ANodeThatLosesTheRaceToCreateTheStreamUsesTheWinnersStream()
    {
        // Every node and the consumer ensure the stream, whoever comes first. Started together, two
        // creates can cross in nats-server, and the loser reads "subjects overlap with an existing
        // stream" (seen once in CI: two nodes and the consumer on a loaded machine). Load alone makes
        // the crossing rare, so the context here makes it happen: another caller's create lands
        // first, on the real server, and this one gets the server's answer to the loser.
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        await using var client = new NatsClient(nats.Url);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_RACE", Subject = "race.readings" };
        INatsJSContext losing = LosingFirstCreate.Wrap(client.CreateJetStreamContext());

        INatsJSStream stream = await JetStreamStream.EnsureAsync(losing, options, budget.Token);

        Assert.Equal("TELEMETRY_RACE", stream.Info.Config.Name);
        Assert.Equal(options.DuplicateWindow, stream.Info.Config.DuplicateWindow);
    }

    [Fact]
    public async Task AStreamWhoseSubjectsAnotherStreamHoldsIsRefusedWithTheServersReason()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();
        await js.CreateStreamAsync(new NATS.Client.JetStream.Models.StreamConfig("SOMEONE_ELSE", ["taken.readings.>"]), budget.Token);

        // Not a race: the retries give up and the server's reason comes through.
        NatsJSApiException refused = await Assert.ThrowsAsync<NatsJSApiException>(() =>
            JetStreamStream.EnsureAsync(js, new JetStreamOptions { Url = nats.Url, Stream = "MINE", Subject = "taken.readings" }, budget.Token));
        Assert.Equal(10065, refused.Error.ErrCode);
    }

    private async Task MoveDevicesAsync()
    {
        const int Devices = 8;
        const int FirstRun = 30;   // readings 1..30 on the first node
        const int Resent = 10;     // 21..30 again: the device never learned whether they arrived
        const int Total = 50;      // and on to 50 on the second node
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var jetStream = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_TEST" };
        string database = Path.Combine(_directory, "telemetry.db");
        using var serverKey = OssuaryIdentity.Generate();
        OssuaryIdentity[] devices = Enumerable.Range(0, Devices).Select(_ => OssuaryIdentity.Generate()).ToArray();
        using var stopConsumer = CancellationTokenSource.CreateLinkedTokenSource(budget.Token);
        await using SqliteReadingStore store = SqliteReadingStore.Open(database);
        var consumer = new JetStreamStoreConsumer(jetStream, store, NullLogger.Instance);
        Task consuming = consumer.RunAsync(stopConsumer.Token);
        try
        {
            // Two ingestion nodes: same server key and allow-list, as behind an L4 load balancer.
            TelemetryServer[] nodes =
            [
                await StartNodeAsync(serverKey, devices, jetStream),
                await StartNodeAsync(serverKey, devices, jetStream),
            ];
            long duplicates;
            try
            {
                // Half the fleet on each node, then every device moves to the other node and resends.
                await Task.WhenAll(
                    RunAsync(nodes[0], serverKey, devices[..(Devices / 2)], 1, FirstRun, budget.Token),
                    RunAsync(nodes[1], serverKey, devices[(Devices / 2)..], 1, FirstRun, budget.Token));
                await Task.WhenAll(
                    RunAsync(nodes[1], serverKey, devices[..(Devices / 2)], FirstRun - Resent + 1, Total - FirstRun + Resent, budget.Token),
                    RunAsync(nodes[0], serverKey, devices[(Devices / 2)..], FirstRun - Resent + 1, Total - FirstRun + Resent, budget.Token));
            }
            finally
            {
                // Stopping a node publishes everything it still holds before it returns.
                foreach (TelemetryServer node in nodes)
                {
                    await node.DisposeAsync();
                }

                duplicates = nodes.Sum(node => ((JetStreamPublisher)GetStore(node)).Duplicates);
            }

            // JetStream itself dropped every resend (by message id device:seq), across nodes.
            Assert.Equal(Devices * (long)Resent, duplicates);
            await using (var client = new NatsClient(nats.Url))
            {
                // Every message the stream took has a number (a dropped duplicate none); the stream
                // holds fewer, as it lets go of what the consumer has stored.
                INatsJSStream stream = await client.CreateJetStreamContext().GetStreamAsync(jetStream.Stream, cancellationToken: budget.Token);
                Assert.Equal(Devices * (ulong)Total, stream.Info.State.LastSeq);
            }

            while (consumer.Stored < Devices * (long)Total)
            {
                await Task.Delay(20, budget.Token);
            }
        }
        finally
        {
            await stopConsumer.CancelAsync();
            await consuming;
            foreach (OssuaryIdentity device in devices)
            {
                device.Dispose();
            }
        }

        Assert.Equal(Devices * (long)Total, consumer.Stored);
        IReadOnlyList<DeviceTotals> totals = ReadingQueries.Totals(database);
        Assert.Equal(Devices, totals.Count);
        Assert.All(totals, device => Assert.Equal((Total, 1L, (long?)Total, 0L), (device.Readings, device.FirstSequence!.Value, device.LastSequence, device.Missing)));
    }

    private static IReadingStore GetStore(TelemetryServer node) => node.Store;

    private static Task<TelemetryServer> StartNodeAsync(OssuaryIdentity serverKey, OssuaryIdentity[] devices, JetStreamOptions jetStream) =>
        TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = devices.Select(d => d.PublicKey).ToList(),
            JetStream = jetStream,
            BatchSize = 64,
        });

    private static async Task RunAsync(TelemetryServer node, OssuaryIdentity serverKey, OssuaryIdentity[] devices, long firstSequence, int readings, CancellationToken cancellationToken)
    {
        long ended = node.Registry.SessionsEnded;
        LoadResult result = await LoadGenerator.RunAsync(new LoadOptions
        {
            Server = node.EndPoint,
            ServerKey = serverKey.PublicKey,
            Devices = devices,
            ReadingsPerDevice = readings,
            FirstSequence = firstSequence,
            Interval = TimeSpan.Zero,
            // A resend is the same reading again: stamped as the first run stamped it, not anew.
            TimeOrigin = ReadingsTaken,
        }, cancellationToken: cancellationToken);
        Assert.All(result.Devices, run => Assert.Null(run.Error));
        while (node.Registry.SessionsEnded < ended + devices.Length)
        {
            await Task.Delay(10, cancellationToken);
        }
    }

    /// <summary>Runs <paramref name="consumer"/> until it has stored <paramref name="readings"/>, then stops it.</summary>
    private static async Task ConsumeAsync(JetStreamStoreConsumer consumer, int readings, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task consuming = consumer.RunAsync(stop.Token);
        while (consumer.Stored < readings)
        {
            await Task.Delay(20, cancellationToken);
        }

        await stop.CancelAsync();
        await consuming;
    }
}
