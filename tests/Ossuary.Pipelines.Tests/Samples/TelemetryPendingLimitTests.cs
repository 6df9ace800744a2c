using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Logging.Testing;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// consume's fetches against the <c>store</c> consumer's pending limit (<c>max_ack_pending</c>): a fetch
/// that asks for more than the limit leaves room for is not ended by nats-server when the limit stops it
/// (it waits for the fetch's 30 s expiry), so consume stored at most the limit every 30 s. The tests read
/// consume's own fetch requests off the wire (a subscription on the consumer's MSG.NEXT subject) instead
/// of timing them.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryPendingLimitTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(150);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-pending-limit-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task AFetchAsksForNoMoreThanTheOperatorsPendingLimitLeavesAndEveryReadingIsStored()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_LIMIT", Subject = "limit.readings" };
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token);

        // An operator's limit under consume's batch of 1,000 (nats-server's own default for a consumer made
        // without one is 1,000, which a single held message puts under the batch the same way).
        await js.CreateOrUpdateConsumerAsync(
            options.Stream,
            new ConsumerConfig(options.Consumer) { AckPolicy = ConsumerConfigAckPolicy.Explicit, MaxAckPending = 2 },
            budget.Token);
        string device = new('f', 64);
        await publisher.WriteAsync([.. Enumerable.Range(1, 5).Select(seq => new StoredReading(device, seq, "temp", seq, seq))], budget.Token);

        await using FetchRequests fetches = await FetchRequests.WatchAsync(client, options, budget.Token);
        await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, "limit.db"));
        var consumer = new JetStreamStoreConsumer(options, store, new FakeLogger());
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token))
        {
            Task consuming = consumer.RunAsync(stop.Token);

            // Ends at the first fetch that asks too much: with it, each pair of readings waited 30 s.
            await ConsumerProgress.WaitForAsync(() => consumer.Stored == 5 || fetches.Largest > 2, consuming, budget.Token);
            await stop.CancelAsync();
            await consuming;
        }

        // Before, every fetch asked for 1,000 under a limit of 2.
        Assert.InRange(fetches.Largest, 1, 2);
        Assert.Equal(5, consumer.Stored);
    }

    [Fact]
    public async Task AStallOfHeldMessagesFetchesNothingAndEndsWhenTheOperatorRaisesTheLimit()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_RAISE", Subject = "raise.readings" };
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token);

        // Two strangers fill a limit of two; a reading waits behind them.
        await js.PublishAsync(options.Subject + ".stranger", "not a reading"u8.ToArray(), cancellationToken: budget.Token);
        await js.PublishAsync(options.Subject + ".stranger", "nor this"u8.ToArray(), cancellationToken: budget.Token);
        await publisher.WriteAsync([new StoredReading(new string('f', 64), 1, "temp", 1, 1)], budget.Token);
        var config = new ConsumerConfig(options.Consumer) { AckPolicy = ConsumerConfigAckPolicy.Explicit, MaxAckPending = 2 };
        await js.CreateOrUpdateConsumerAsync(options.Stream, config, budget.Token);

        await using FetchRequests fetches = await FetchRequests.WatchAsync(client, options, budget.Token);
        var logger = new FakeLogger();
        await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, "raise.db"));
        var consumer = new JetStreamStoreConsumer(options, store, logger);
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token))
        {
            Task consuming = consumer.RunAsync(stop.Token);
            await ConsumerProgress.WaitForAsync(() => logger.Collector.GetSnapshot().Any(r => r.Id.Id == 1718), consuming, budget.Token);

            // What event 1718 says to do.
            config.MaxAckPending = 3;
            await js.CreateOrUpdateConsumerAsync(options.Stream, config, budget.Token);
            await ConsumerProgress.WaitForAsync(() => consumer.Stored == 1 || fetches.Largest > 2, consuming, budget.Token);
            await stop.CancelAsync();
            await consuming;
        }

        // Two for the strangers, then one for the reading the raised limit lets through. Before, each fetch
        // asked for 1,000, and nats-server kept the one the limit stopped open for its 30 s: the reading
        // delivered into it after the raise was stored only when that fetch ended.
        Assert.InRange(fetches.Largest, 1, 2);
        Assert.Equal((1L, 2L), (consumer.Stored, consumer.Held));
    }

    /// <summary>The batch sizes of the pull requests made on the consumer, as nats-server receives them.</summary>
    private sealed class FetchRequests : IAsyncDisposable
    {
        private readonly ConcurrentQueue<int> _batches = new();
        private readonly INatsSub<byte[]> _subscription;
        private readonly Task _reading;

        private FetchRequests(INatsSub<byte[]> subscription)
        {
            _subscription = subscription;
            _reading = Task.Run(async () =>
            {
                await foreach (NatsMsg<byte[]> request in subscription.Msgs.ReadAllAsync())
                {
                    using var json = JsonDocument.Parse(request.Data);
                    _batches.Enqueue(json.RootElement.TryGetProperty("batch", out JsonElement batch) ? batch.GetInt32() : 1);
                }
            });
        }

        public int Largest => _batches.IsEmpty ? 0 : _batches.Max();

        public static async Task<FetchRequests> WatchAsync(NatsClient client, JetStreamOptions options, CancellationToken cancellationToken)
        {
            INatsSub<byte[]> subscription = await client.Connection.SubscribeCoreAsync<byte[]>(
                $"$JS.API.CONSUMER.MSG.NEXT.{options.Stream}.{options.Consumer}", cancellationToken: cancellationToken);

            // Subscribed on the server before consume starts: a round trip after the SUB.
            await client.Connection.PingAsync(cancellationToken);
            return new FetchRequests(subscription);
        }

        public async ValueTask DisposeAsync()
        {
            await _subscription.UnsubscribeAsync();
            await _reading;
            await _subscription.DisposeAsync();
        }
    }
}
