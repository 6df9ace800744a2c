using System.Text;
using Microsoft.Extensions.Logging.Testing;
using NATS.Client.JetStream;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// A message on the readings' subjects whose value is not a finite number (NaN, Infinity: another
/// program's, a newer version's; a device's line with one is rejected by the parser) decoded as a
/// reading, and the SQLite store refused NaN ("Cannot store 'NaN' values."): the whole batch failed,
/// consume stopped with exit 1, and the message, still in the stream, stopped it again at every restart.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryNonFiniteValueTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-nan-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("-Infinity")]
    public void AMessageWhoseValueIsNotAFiniteNumberIsNotAReading(string value)
    {
        byte[] message = Encoding.UTF8.GetBytes($"{new string('a', 64)} 1 1718000000000 {value} temp");

        Assert.Throws<FormatException>(() => ReadingMessage.Decode(message, null));
    }

    [Fact]
    public async Task ConsumeHoldsAMessageWhoseValueIsNotAFiniteNumberAndStoresTheReadingsAroundIt()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_NAN", Subject = "nan.readings" };
        string device = new('d', 64);
        await using (JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token))
        {
            await publisher.WriteAsync([new StoredReading(device, 1, "temp", 1, 1)], budget.Token);
            await using var client = new NatsClient(nats.Url);
            await client.CreateJetStreamContext().PublishAsync($"{options.Subject}.{device}", Encoding.UTF8.GetBytes($"{device} 2 2 NaN temp"), cancellationToken: budget.Token);
            await publisher.WriteAsync([new StoredReading(device, 3, "temp", 3, 3)], budget.Token);
        }

        string database = Path.Combine(_directory, "nan.db");
        await using SqliteReadingStore store = SqliteReadingStore.Open(database);
        var consumer = new JetStreamStoreConsumer(options, store, new FakeLogger());
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token);
        Task consuming = consumer.RunAsync(stop.Token);
        await ConsumerProgress.WaitForAsync(() => consumer.Stored == 2 && consumer.Held == 1, consuming, budget.Token);
        await stop.CancelAsync();
        await consuming;

        Assert.Equal([1, 3], ReadingQueries.Readings(database, device, 0).Select(reading => reading.Value));
    }
}
