using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// Messages consume cannot decode are held (handed back, not acknowledged), and JetStream counts each
/// against the store consumer's pending limit: as many as the limit and no reading is delivered any more.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryHeldStallTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-held-stall-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task HeldMessagesFillingThePendingLimitAreAnErrorNamingTheStall()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_STALL", Subject = "stall.readings" };
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();
        await using (JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token))
        {
            // Two strangers ahead of a reading, under an operator's pending limit of two.
            await js.PublishAsync(options.Subject + ".stranger", "not a reading"u8.ToArray(), cancellationToken: budget.Token);
            await js.PublishAsync(options.Subject + ".stranger", "nor this"u8.ToArray(), cancellationToken: budget.Token);
            await publisher.WriteAsync([new StoredReading(new string('e', 64), 1, "temp", 1, 1)], budget.Token);
        }

        await js.CreateOrUpdateConsumerAsync(
            options.Stream,
            new ConsumerConfig(options.Consumer) { AckPolicy = ConsumerConfigAckPolicy.Explicit, MaxAckPending = 2 },
            budget.Token);

        var logger = new FakeLogger();
        await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, "stall.db"));
        var consumer = new JetStreamStoreConsumer(options, store, logger);
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token))
        {
            Task consuming = consumer.RunAsync(stop.Token);
            await ConsumerProgress.WaitForAsync(() => Stalls(logger) == 1, consuming, budget.Token);
            await stop.CancelAsync();
            await consuming;
        }

        // The stall itself: both held messages fill the limit, and the reading behind them is not delivered.
        Assert.Equal(0, consumer.Stored);

        // Before, nothing said so: two 1710 Errors about the strangers, then silence while readings waited.
        FakeLogRecord stall = Assert.Single(logger.Collector.GetSnapshot(), r => r.Id.Id == 1718);
        Assert.Equal(LogLevel.Error, stall.Level);
        Assert.Contains("max_ack_pending 2", stall.Message, StringComparison.Ordinal);
        Assert.Contains("no reading is delivered", stall.Message, StringComparison.Ordinal);

        // Every reading is still recoverable: the stream holds the strangers and the reading.
        INatsJSStream stream = await js.GetStreamAsync(options.Stream, cancellationToken: budget.Token);
        Assert.Equal(3L, stream.Info.State.Messages);
    }

    [Fact]
    public async Task AHeldMessageTheOperatorRemovedIsNeitherCountedNorTakenForAStall()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_REMOVED", Subject = "removed.readings" };
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token);
        await js.PublishAsync(options.Subject + ".stranger", "not a reading"u8.ToArray(), cancellationToken: budget.Token);
        await js.CreateOrUpdateConsumerAsync(
            options.Stream,
            new ConsumerConfig(options.Consumer) { AckPolicy = ConsumerConfigAckPolicy.Explicit, MaxAckPending = 2 },
            budget.Token);

        var logger = new FakeLogger();
        await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, "removed.db"));
        var consumer = new JetStreamStoreConsumer(options, store, logger);
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token))
        {
            Task consuming = consumer.RunAsync(stop.Token);
            await ConsumerProgress.WaitForAsync(() => consumer.Held == 1, consuming, budget.Token);

            // The operator does as event 1710 says: 'nats stream rmm'. Then another stranger, and a reading.
            INatsJSStream stream = await js.GetStreamAsync(options.Stream, cancellationToken: budget.Token);
            await stream.DeleteMessageAsync(new StreamMsgDeleteRequest { Seq = 1 }, budget.Token);
            await js.PublishAsync(options.Subject + ".stranger", "nor this"u8.ToArray(), cancellationToken: budget.Token);
            await ConsumerProgress.WaitForAsync(() => Records(logger, 1710) == 2, consuming, budget.Token);
            await publisher.WriteAsync([new StoredReading(new string('e', 64), 1, "temp", 1, 1)], budget.Token);
            await ConsumerProgress.WaitForAsync(() => consumer.Stored == 1, consuming, budget.Token);

            await stop.CancelAsync();
            await consuming;
        }

        // One message held, under a limit of two: the reading was delivered, nothing stalled. Before, the
        // removed one stayed counted: 2 held (the stop line's count) and a 1718 Error for a stall that was not.
        Assert.Equal(1, consumer.Held);
        Assert.Equal(0, Stalls(logger));
    }

    [Fact]
    public async Task AStallUnderALimitTheOperatorRaisedIsReportedAgainstTheNewLimitAndNotTheOld()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_RAISED", Subject = "raised.readings" };
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token);
        var config = new ConsumerConfig(options.Consumer) { AckPolicy = ConsumerConfigAckPolicy.Explicit, MaxAckPending = 2 };
        await js.CreateOrUpdateConsumerAsync(options.Stream, config, budget.Token);
        string device = new('e', 64);

        var logger = new FakeLogger();
        await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, "raised.db"));
        var consumer = new JetStreamStoreConsumer(options, store, logger);
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token))
        {
            Task consuming = consumer.RunAsync(stop.Token);
            await publisher.WriteAsync([new StoredReading(device, 1, "temp", 1, 1)], budget.Token);
            await ConsumerProgress.WaitForAsync(() => consumer.Stored == 1, consuming, budget.Token);

            // Consume has started, on a limit of two. The operator raises it to three; two strangers then
            // leave room for a reading, which is delivered: no stall.
            config.MaxAckPending = 3;
            await js.CreateOrUpdateConsumerAsync(options.Stream, config, budget.Token);
            await js.PublishAsync(options.Subject + ".stranger", "not a reading"u8.ToArray(), cancellationToken: budget.Token);
            await js.PublishAsync(options.Subject + ".stranger", "nor this"u8.ToArray(), cancellationToken: budget.Token);
            await publisher.WriteAsync([new StoredReading(device, 2, "temp", 2, 2)], budget.Token);
            await ConsumerProgress.WaitForAsync(() => consumer.Stored == 2, consuming, budget.Token);

            // A third fills the new limit, with a reading behind it: the stall.
            await js.PublishAsync(options.Subject + ".stranger", "nor that"u8.ToArray(), cancellationToken: budget.Token);
            await publisher.WriteAsync([new StoredReading(device, 3, "temp", 3, 3)], budget.Token);
            await ConsumerProgress.WaitForAsync(() => Stalls(logger) == 1, consuming, budget.Token);
            await stop.CancelAsync();
            await consuming;
        }

        // Before, the limit read at start (2) was compared with the count held: a 1718 Error at two held,
        // while readings were delivered, and none at three, when they were not.
        FakeLogRecord stall = Assert.Single(logger.Collector.GetSnapshot(), r => r.Id.Id == 1718);
        Assert.Contains("3 messages that are not readings", stall.Message, StringComparison.Ordinal);
        Assert.Contains("max_ack_pending 3", stall.Message, StringComparison.Ordinal);
        Assert.Equal((3L, 2L), (consumer.Held, consumer.Stored));
    }

    private static int Records(FakeLogger logger, int eventId) => logger.Collector.GetSnapshot().Count(r => r.Id.Id == eventId);

    private static int Stalls(FakeLogger logger) => Records(logger, 1718);
}
