using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// The <c>store</c> consumer an operator has configured: consume starts on it, and must neither rewrite
/// the operator's settings nor read through one under which a reading can go unstored for good.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryConsumerSettingsTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-consumer-settings-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task TheOperatorsSettingsOnTheStoreConsumerSurviveConsumeStarting()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_TUNED", Subject = "tuned.readings" };
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();
        await using (JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token))
        {
            await publisher.WriteAsync([new StoredReading(new string('c', 64), 1, "temp", 1, 1)], budget.Token);
        }

        await js.CreateOrUpdateConsumerAsync(
            options.Stream,
            new ConsumerConfig(options.Consumer)
            {
                AckPolicy = ConsumerConfigAckPolicy.Explicit,
                AckWait = TimeSpan.FromMinutes(2),
                MaxAckPending = 2_000,
                Description = "tuned by the operator",
            },
            budget.Token);

        await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, "tuned.db"));
        var consumer = new JetStreamStoreConsumer(options, store, NullLogger.Instance);
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token))
        {
            Task consuming = consumer.RunAsync(stop.Token);
            while (consumer.Stored < 1)
            {
                await Task.Delay(20, budget.Token);
            }

            await stop.CancelAsync();
            await consuming;
        }

        // Before, each start replaced the consumer's configuration with the sample's: 30 s, 10 000, no description.
        ConsumerConfig config = (await js.GetConsumerAsync(options.Stream, options.Consumer, budget.Token)).Info.Config;
        Assert.Equal((TimeSpan.FromMinutes(2), 2_000L, "tuned by the operator"), (config.AckWait, config.MaxAckPending, config.Description));
    }

    [Fact]
    public async Task AStoreConsumerThatCanLeaveReadingsUnstoredIsRefusedNamingTheSettingAndLeftAsItIs()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();

        // Each can leave a reading unstored for good: no more deliveries after N (a reading the store
        // failed on N times), acknowledged by delivery or by a later one (a consume killed before storing
        // its batch), readings outside the filter never delivered, or delivered without their data.
        // nats-server allows acknowledgement other than explicit only off a work queue: on the stream
        // an earlier version made (limits retention), which the sample still uses, with a warning.
        (string Name, Action<ConsumerConfig> Set, string Setting)[] cases =
        [
            ("MAX_DELIVER", config => config.MaxDeliver = 5, "max_deliver 5"),
            ("ACK_ALL", config => config.AckPolicy = ConsumerConfigAckPolicy.All, "ack_policy all"),
            ("ACK_NONE", config => config.AckPolicy = ConsumerConfigAckPolicy.None, "ack_policy none"),
            ("FILTERED", config => config.FilterSubject = "filtered.readings.one", "filter_subject filtered.readings.one"),
            ("HEADERS_ONLY", config => config.HeadersOnly = true, "headers_only"),

            // A push consumer answers no fetch: consume failed on its first with NATS's bare '409 Consumer is push based'.
            ("PUSH", config => config.DeliverSubject = "push.deliver", "deliver_subject push.deliver"),
        ];
        foreach ((string name, Action<ConsumerConfig> set, string setting) in cases)
        {
            var options = new JetStreamOptions { Url = nats.Url, Stream = name, Subject = name.ToLowerInvariant() + ".readings" };
            bool earlier = name.StartsWith("ACK_", StringComparison.Ordinal);
            await js.CreateStreamAsync(
                new StreamConfig(options.Stream, [options.Subject + ".>"])
                {
                    Retention = earlier ? StreamConfigRetention.Limits : StreamConfigRetention.Workqueue,
                    Discard = StreamConfigDiscard.New,
                    DuplicateWindow = options.DuplicateWindow,
                },
                budget.Token);
            await using (JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token))
            {
                await publisher.WriteAsync([new StoredReading(new string('d', 64), 1, "temp", 1, 1)], budget.Token);
            }

            var config = new ConsumerConfig(options.Consumer) { AckPolicy = ConsumerConfigAckPolicy.Explicit };
            set(config);
            ConsumerConfig before = (await js.CreateOrUpdateConsumerAsync(options.Stream, config, budget.Token)).Info.Config;

            await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, name + ".db"));
            var consumer = new JetStreamStoreConsumer(options, store, NullLogger.Instance);
            InvalidOperationException refused = await Assert.ThrowsAsync<InvalidOperationException>(() => consumer.RunAsync(budget.Token));

            Assert.Contains($"{options.Consumer} on the JetStream stream {name} has {setting}", refused.Message, StringComparison.Ordinal);
            ConsumerConfig after = (await js.GetConsumerAsync(options.Stream, options.Consumer, budget.Token)).Info.Config;
            Assert.Equal(
                (before.MaxDeliver, before.AckPolicy, before.FilterSubject, before.HeadersOnly, before.DeliverSubject),
                (after.MaxDeliver, after.AckPolicy, after.FilterSubject, after.HeadersOnly, after.DeliverSubject));
        }
    }
}
