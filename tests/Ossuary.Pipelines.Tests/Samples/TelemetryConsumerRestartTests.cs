using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// A consume process that dies between taking a batch and storing it (killed, a store error) leaves that
/// batch owed by JetStream. The next process must not acknowledge it away with its own first batch.
/// And the other way round: a consumer stopped right after it stored a batch gets that batch's
/// acknowledgements to JetStream before it closes its connection, or JetStream would deliver it again
/// and a reading without a sequence number (which the store cannot recognise) would be stored twice.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryConsumerRestartTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(150);

    // JetStream redelivers an unacknowledged batch after the consumer's AckWait (30 s by default),
    // which these tests wait out. Shorter here, but still far longer than a restarted consumer takes to
    // acknowledge its first batch: were the dead consumer's batch redelivered before that, the first
    // test would no longer see an acknowledgement of the new batch take the old one with it, and a
    // redelivered batch acknowledged later than this would be counted twice in the second.
    private static readonly TimeSpan AckWait = TimeSpan.FromSeconds(10);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-restart-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task ABatchTakenByAConsumerThatDiedIsStoredAfterARestart() => RestartAsync().WaitAsync(HardLimit);

    private async Task RestartAsync()
    {
        const int Half = 5;
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_RESTART", Subject = "restart.readings", AckWait = AckWait };
        string device = new('a', 64);
        string database = Path.Combine(_directory, "telemetry.db");
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token);

        // Readings 1..5 are taken by a consumer whose store fails: it stops without acknowledging them.
        await publisher.WriteAsync(Readings(device, 1, Half), budget.Token);
        await Assert.ThrowsAsync<IOException>(() => new JetStreamStoreConsumer(options, new BrokenStore(), NullLogger.Instance).RunAsync(budget.Token));

        // Readings keep coming while it is restarted; the new process stores 6..10 first.
        await publisher.WriteAsync(Readings(device, Half + 1, Half), budget.Token);
        await using SqliteReadingStore store = SqliteReadingStore.Open(database);
        var consumer = new JetStreamStoreConsumer(options, store, NullLogger.Instance);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token);
        Task consuming = consumer.RunAsync(stop.Token);
        try
        {
            while (consumer.Stored < Half)
            {
                await Task.Delay(10, budget.Token);
            }

            // Once the new process's acknowledgements have landed, every reading must be stored or still
            // owed: with acknowledge-all, its acknowledgement of 10 also acknowledged 1..5, unstored.
            await using var client = new NatsClient(nats.Url);
            INatsJSContext js = client.CreateJetStreamContext();
            long pending;
            while ((pending = (await js.GetConsumerAsync(options.Stream, options.Consumer, budget.Token)).Info.NumAckPending) > Half)
            {
                await Task.Delay(10, budget.Token);
            }

            long stored = ReadingQueries.Totals(database).Single().Readings;
            Assert.True(stored + pending == 2 * Half, $"{stored} stored and {pending} still owed by JetStream, of {2 * Half}: the rest is lost");

            // And JetStream does deliver them again (after its AckWait).
            while (ReadingQueries.Totals(database).Single().Readings < 2 * Half)
            {
                await Task.Delay(100, budget.Token);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await consuming;
        }

        Assert.Equal(Enumerable.Range(1, 2 * Half).Select(i => (long?)i), ReadingQueries.Readings(database, device, 0).Select(r => r.Sequence));
    }

    [Fact]
    public Task AReadingWithoutASequenceNumberRedeliveredAfterTheConsumerDiedIsStoredOnce() => RedeliverUnsequencedAsync().WaitAsync(HardLimit);

    private async Task RedeliverUnsequencedAsync()
    {
        const int Readings = 3;
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_REDELIVER", Subject = "redeliver.readings", AckWait = AckWait };
        string device = new('a', 64);
        await using (JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token))
        {
            await publisher.WriteAsync(Enumerable.Range(1, Readings).Select(i => new StoredReading(device, null, "temp", i, i)).ToArray(), budget.Token);
        }

        // The first process stores the batch and dies before it acknowledges it (killed, say):
        // JetStream delivers the batch again, after its AckWait, to the next process.
        string database = Path.Combine(_directory, "telemetry.db");
        await using SqliteReadingStore store = SqliteReadingStore.Open(database);
        await Assert.ThrowsAsync<IOException>(() => new JetStreamStoreConsumer(options, new DiesAfterStoring(store), NullLogger.Instance).RunAsync(budget.Token));
        Assert.Equal(Readings, ReadingQueries.Totals(database).Single().Readings);

        var consumer = new JetStreamStoreConsumer(options, store, NullLogger.Instance);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token);
        Task consuming = consumer.RunAsync(stop.Token);
        try
        {
            while (consumer.Stored + consumer.Duplicates < Readings)
            {
                await Task.Delay(100, budget.Token);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await consuming;
        }

        // Counted as what they were: the store had them all, so this consumer stored none.
        Assert.Equal(0, consumer.Stored);
        Assert.Equal(Readings, consumer.Duplicates);

        // The redelivered readings carry no sequence number; their message ids are what tells them apart.
        Assert.Equal(Enumerable.Range(1, Readings).Select(i => (double)i), ReadingQueries.Readings(database, device, 0).Select(r => r.Value));
    }

    /// <summary>Stores the batch, then fails as a process killed before its acknowledgements would.</summary>
    private sealed class DiesAfterStoring(IReadingStore inner) : IReadingStore
    {
        public async ValueTask<int> WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken)
        {
            await inner.WriteAsync(batch, cancellationToken);
            throw new IOException("killed after storing, before acknowledging");
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private static StoredReading[] Readings(string device, int first, int count) =>
        Enumerable.Range(first, count).Select(seq => new StoredReading(device, seq, "temp", seq, seq)).ToArray();

    /// <summary>A store whose disk fails on the first batch.</summary>
    private sealed class BrokenStore : IReadingStore
    {
        public ValueTask<int> WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken) =>
            ValueTask.FromException<int>(new IOException("disk I/O error"));

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [Fact]
    public Task ABatchStoredAsTheConsumerIsStoppedIsAcknowledged() => StopWhileStoringAsync().WaitAsync(HardLimit);

    private async Task StopWhileStoringAsync()
    {
        const int Readings = 3;
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_STOPACK", Subject = "stopack.readings" };
        await using (JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token))
        {
            string device = new('a', 64);
            await publisher.WriteAsync(Enumerable.Range(1, Readings).Select(i => new StoredReading(device, null, "temp", i, i)).ToArray(), budget.Token);
        }

        // Ctrl+C lands while the batch is being stored: the store has it when the stop is seen.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token);
        await using SqliteReadingStore sqlite = SqliteReadingStore.Open(Path.Combine(_directory, "telemetry.db"));
        var consumer = new JetStreamStoreConsumer(options, new StopWhileStoring(sqlite, stop), NullLogger.Instance);
        await consumer.RunAsync(stop.Token);
        Assert.Equal(Readings, consumer.Stored);

        // The acknowledgements are sent without a reply: look until JetStream has them. The guard only
        // bounds the look; unacknowledged, the floor never moves (a redelivery needs a consumer pulling).
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();
        using var guard = CancellationTokenSource.CreateLinkedTokenSource(budget.Token);
        guard.CancelAfter(TimeSpan.FromSeconds(20));
        ConsumerInfo info;
        while ((info = (await js.GetConsumerAsync(options.Stream, options.Consumer, budget.Token)).Info).AckFloor?.StreamSeq < Readings && !guard.IsCancellationRequested)
        {
            await Task.Delay(50, CancellationToken.None);
        }

        Assert.True(info.AckFloor?.StreamSeq == Readings, $"the stored batch was not acknowledged: ack floor at stream sequence {info.AckFloor?.StreamSeq}, {info.NumAckPending} pending");
    }

    /// <summary>Stores into the real store, then stops the consumer, as a signal arriving during the write does.</summary>
    private sealed class StopWhileStoring(IReadingStore inner, CancellationTokenSource stop) : IReadingStore
    {
        public async ValueTask<int> WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken)
        {
            int added = await inner.WriteAsync(batch, cancellationToken);
            await stop.CancelAsync();
            return added;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
