using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// The readings stream an operator has configured: every node and consume start against it, and must
/// neither rewrite the operator's settings nor run on a stream that deletes readings JetStream
/// acknowledged (and so devices were told are stored) before consume has stored them.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryStreamSettingsTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-settings-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task TheOperatorsLimitsOnTheStreamSurviveANodeAndConsumeStarting()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_OPERATED", Subject = "operated.readings" };
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();
        await js.CreateStreamAsync(
            new StreamConfig(options.Stream, [options.Subject + ".>"])
            {
                Retention = StreamConfigRetention.Workqueue,
                Discard = StreamConfigDiscard.New,
                MaxMsgs = 100_000,
                MaxBytes = 64 * 1024 * 1024,
                MaxMsgSize = 4096,
                DuplicateWindow = TimeSpan.FromMinutes(30),
                Description = "sized by the operator",
            },
            budget.Token);

        // A node publishes through it, and consume stores what it published: both have looked at the stream.
        await using (JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token))
        {
            await publisher.WriteAsync([new StoredReading(new string('e', 64), 1, "temp", 1, 1)], budget.Token);
        }

        await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, "operated.db"));
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

        // Before, each start replaced the whole configuration with the sample's: no limits, a 10-minute window.
        StreamConfig config = (await js.GetStreamAsync(options.Stream, cancellationToken: budget.Token)).Info.Config;
        Assert.Equal(
            (100_000L, 64L * 1024 * 1024, 4096, TimeSpan.FromMinutes(30), "sized by the operator"),
            (config.MaxMsgs, config.MaxBytes, config.MaxMsgSize, config.DuplicateWindow, config.Description));
    }

    [Fact]
    public async Task AStreamWithoutTheReadingsSubjectsGetsThemAndKeepsItsOwn()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_ELSEWHERE", Subject = "moved.readings" };
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();
        await js.CreateStreamAsync(
            new StreamConfig(options.Stream, ["elsewhere.>"]) { Retention = StreamConfigRetention.Workqueue, Discard = StreamConfigDiscard.New, DuplicateWindow = options.DuplicateWindow },
            budget.Token);

        // Without the readings' subjects the node's publishes find no stream: it would retry them for
        // ever as an outage, its devices waiting, while consume read an empty stream.
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token);
        StreamConfig config = (await js.GetStreamAsync(options.Stream, cancellationToken: budget.Token)).Info.Config;
        Assert.Equal(["elsewhere.>", "moved.readings.>"], config.Subjects!.Order(StringComparer.Ordinal));

        // Covered already (by a wider subject): nothing is added, which the server would refuse as an overlap.
        var wider = new JetStreamOptions { Url = nats.Url, Stream = options.Stream, Subject = "elsewhere.readings" };
        await using JetStreamPublisher second = await JetStreamPublisher.ConnectAsync(wider, budget.Token);
        Assert.Equal(2, (await js.GetStreamAsync(options.Stream, cancellationToken: budget.Token)).Info.Config.Subjects!.Count);
        await second.WriteAsync([new StoredReading(new string('f', 64), 1, "temp", 1, 1)], budget.Token);
        await publisher.WriteAsync([new StoredReading(new string('f', 64), 2, "temp", 2, 2)], budget.Token);
        Assert.Equal(2, (await js.GetStreamAsync(options.Stream, cancellationToken: budget.Token)).Info.State.Messages);
    }

    [Fact]
    public async Task AStreamThatDeletesAcknowledgedReadingsIsRefusedNamingTheSettingAndLeftAsItIs()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();

        // Each deletes a reading JetStream acknowledged, unstored: by age, past a device's count (its
        // subject), the oldest at the stream's limit, as soon as published with no consumer, or at a
        // restart of the NATS server. Before, a node rewrote the first three away silently and ran on
        // the other two.
        (string Name, Action<StreamConfig> Set, string Setting)[] cases =
        [
            ("AGED", config => config.MaxAge = TimeSpan.FromHours(1), "max_age"),
            ("PER_DEVICE", config => config.MaxMsgsPerSubject = 100, "max_msgs_per_subject"),
            ("DISCARD_OLD", config => (config.Discard, config.MaxMsgs) = (StreamConfigDiscard.Old, 1000), "discard old"),
            ("INTEREST", config => config.Retention = StreamConfigRetention.Interest, "retention interest"),
            ("MEMORY", config => config.Storage = StreamConfigStorage.Memory, "storage memory"),
        ];
        foreach ((string name, Action<StreamConfig> set, string setting) in cases)
        {
            var options = new JetStreamOptions { Url = nats.Url, Stream = name, Subject = name.ToLowerInvariant() + ".readings" };
            var config = new StreamConfig(options.Stream, [options.Subject + ".>"])
            {
                Retention = StreamConfigRetention.Workqueue,
                Discard = StreamConfigDiscard.New,
                DuplicateWindow = options.DuplicateWindow,
            };
            set(config);
            StreamConfig before = (await js.CreateStreamAsync(config, budget.Token)).Info.Config;

            InvalidOperationException node = await Assert.ThrowsAsync<InvalidOperationException>(() => JetStreamPublisher.ConnectAsync(options, budget.Token));
            await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, name + ".db"));
            InvalidOperationException consume = await Assert.ThrowsAsync<InvalidOperationException>(() => new JetStreamStoreConsumer(options, store, NullLogger.Instance).RunAsync(budget.Token));

            Assert.All([node, consume], refused => Assert.Contains($"{name} has {setting}", refused.Message, StringComparison.Ordinal));
            StreamConfig after = (await js.GetStreamAsync(options.Stream, cancellationToken: budget.Token)).Info.Config;
            Assert.Equal(
                (before.MaxAge, before.MaxMsgsPerSubject, before.Discard, before.MaxMsgs, before.Retention, before.Storage),
                (after.MaxAge, after.MaxMsgsPerSubject, after.Discard, after.MaxMsgs, after.Retention, after.Storage));
        }
    }

    [Fact]
    public async Task AStreamThatDoesNotAcknowledgePublishesIsRefusedNamingTheSetting()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();
        var options = new JetStreamOptions { Url = nats.Url, Stream = "UNANSWERED", Subject = "unanswered.readings" };
        await js.CreateStreamAsync(
            new StreamConfig(options.Stream, [options.Subject + ".>"])
            {
                Retention = StreamConfigRetention.Workqueue,
                Discard = StreamConfigDiscard.New,
                DuplicateWindow = options.DuplicateWindow,
                NoAck = true,
            },
            budget.Token);

        // Under no_ack the server answers no publish: a node took each one as a NATS outage and retried
        // it for ever, its devices waiting for an "ok" that never came, and logged nothing that named why.
        InvalidOperationException node = await Assert.ThrowsAsync<InvalidOperationException>(() => JetStreamPublisher.ConnectAsync(options, budget.Token));
        await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, "unanswered.db"));
        InvalidOperationException consume = await Assert.ThrowsAsync<InvalidOperationException>(() => new JetStreamStoreConsumer(options, store, NullLogger.Instance).RunAsync(budget.Token));

        Assert.All([node, consume], refused => Assert.Contains("UNANSWERED has no_ack", refused.Message, StringComparison.Ordinal));
        Assert.True((await js.GetStreamAsync(options.Stream, cancellationToken: budget.Token)).Info.Config.NoAck);
    }
}
