using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// A consumer stopped right after it stored a batch gets that batch's acknowledgements to JetStream
/// before it closes its connection: JetStream would deliver the batch again to the next consumer, and
/// a reading without a sequence number (which the store cannot recognise) would be stored twice.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryConsumerStopAckTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-stopack-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

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
        public async ValueTask WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken)
        {
            await inner.WriteAsync(batch, cancellationToken);
            await stop.CancelAsync();
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
