using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Testing;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// A readings stream at its limits (an operator's max-msgs, say, with consume behind): the node holds
/// the readings back (its devices are not told they are stored, and wait) until the stream has room,
/// and says so at Error; it neither deletes readings the stream holds nor stops.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryStreamFullTests : IDisposable
{
    private const int Full = 1715;
    private const int Room = 1716;
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-full-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task AFullStreamHoldsReadingsBackUntilConsumeMakesRoomAndLosesNone() => FullStreamAsync().WaitAsync(HardLimit);

    private async Task FullStreamAsync()
    {
        const int Limit = 3;
        const int Readings = 8;
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_FULL", Subject = "full.readings" };
        var logger = new FakeLogger();
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, logger, budget.Token);

        // The operator caps the stream the node made (nats stream edit --max-msgs 3), keeping the rest of its settings.
        await using var client = new NatsClient(nats.Url);
        INatsJSContext js = client.CreateJetStreamContext();
        StreamConfig capped = (await js.GetStreamAsync(options.Stream, cancellationToken: budget.Token)).Info.Config;
        capped.MaxMsgs = Limit;
        await js.UpdateStreamAsync(capped, budget.Token);

        string device = new('f', 64);
        Task write = publisher.WriteAsync(Enumerable.Range(1, Readings).Select(seq => new StoredReading(device, seq, "temp", seq, seq)).ToArray(), budget.Token).AsTask();
        while (!logger.Collector.GetSnapshot().Any(record => record.Id.Id == Full) && !write.IsCompleted)
        {
            await Task.Delay(50, budget.Token);
        }

        // Not completed (that is what tells a device its readings are stored), and not failed (which
        // stopped the node): held back. Before, the stream made room by deleting its oldest readings,
        // which the node had been told were stored.
        Assert.False(write.IsCompleted, $"the write ended on a full stream: {(write.IsFaulted ? write.Exception!.InnerException : $"completed, the stream holding {(await js.GetStreamAsync(options.Stream, cancellationToken: budget.Token)).Info.State.Messages} of {Readings}")}");
        Assert.Equal(LogLevel.Error, logger.Collector.GetSnapshot().Single(record => record.Id.Id == Full).Level);

        // consume catches up: the stream has room again, the rest is published, and every reading is stored.
        string database = Path.Combine(_directory, "full.db");
        await using SqliteReadingStore store = SqliteReadingStore.Open(database);
        var consumer = new JetStreamStoreConsumer(options, store, NullLogger.Instance);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token);
        Task consuming = consumer.RunAsync(stop.Token);
        try
        {
            await write;
            while (consumer.Stored < Readings)
            {
                await Task.Delay(20, budget.Token);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await consuming;
        }

        DeviceTotals totals = ReadingQueries.Totals(database).Single();
        Assert.Equal((Readings, 1L, (long?)Readings, 0L), (totals.Readings, totals.FirstSequence!.Value, totals.LastSequence, totals.Missing));
        Assert.Single(logger.Collector.GetSnapshot(), record => record.Id.Id == Full);
        Assert.Equal(LogLevel.Information, logger.Collector.GetSnapshot().Single(record => record.Id.Id == Room).Level);
    }
}
