using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// <c>consume</c> while its NATS server is down: it waits the outage out (the NATS client reconnects on
/// its own), and says so, once, and says when the server is back, so that its operator can tell a
/// waiting process from a hung one.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryConsumerOutageTests : IDisposable
{
    private const int Lost = 1713;
    private const int Back = 1714;
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-outage-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task TheConsumerSaysOnceThatItLostNatsAndSaysWhenItIsBack() => OutageAsync().WaitAsync(HardLimit);

    private async Task OutageAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_DOWN", Subject = "down.readings" };
        string device = new('a', 64);
        await PublishAsync(options, new StoredReading(device, 1, "temp", 1, 1), budget.Token);

        var logger = new FakeLogger();
        await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, "telemetry.db"));
        var consumer = new JetStreamStoreConsumer(options, store, logger);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token);
        Task consuming = consumer.RunAsync(stop.Token);
        try
        {
            while (consumer.Stored < 1)
            {
                await Task.Delay(20, budget.Token);
            }

            // Another client on the same server, with the same reconnect schedule, counts the retries:
            // when it has failed three times, so has the consumer's connection, and one warning it is.
            await using var observer = new NatsClient(nats.Url);
            await observer.PingAsync(budget.Token);
            int failures = 0;
            observer.Connection.ReconnectFailed += (_, _) =>
            {
                Interlocked.Increment(ref failures);
                return ValueTask.CompletedTask;
            };

            await nats.StopAsync();
            while (Volatile.Read(ref failures) < 3)
            {
                await Task.Delay(50, budget.Token);
            }

            Assert.Equal([LogLevel.Warning], Levels(logger, Lost));
            Assert.Empty(Levels(logger, Back));

            await nats.RestartAsync(budget.Token);
            while (Levels(logger, Back).Count == 0)
            {
                await Task.Delay(50, budget.Token);
            }

            // Back, and consuming again.
            await PublishAsync(options, new StoredReading(device, 2, "temp", 2, 2), budget.Token);
            while (consumer.Stored < 2)
            {
                await Task.Delay(20, budget.Token);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await consuming;
        }

        Assert.Equal([LogLevel.Warning], Levels(logger, Lost));
        Assert.Equal([LogLevel.Information], Levels(logger, Back));
        Assert.Contains(nats.Url.Replace("nats://", "", StringComparison.Ordinal), logger.Collector.GetSnapshot().Single(r => r.Id.Id == Lost).Message, StringComparison.Ordinal);
    }

    private static List<LogLevel> Levels(FakeLogger logger, int id) =>
        [.. logger.Collector.GetSnapshot().Where(r => r.Id.Id == id).Select(r => r.Level)];

    private static async Task PublishAsync(JetStreamOptions options, StoredReading reading, CancellationToken cancellationToken)
    {
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, cancellationToken);
        await publisher.WriteAsync([reading], cancellationToken);
    }
}
