using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// A NATS server that is frozen (SIGSTOP: its connections stay open, nothing answers), not gone: the
/// ingestion node and consume notice it within their ping bound (about 15 s; the NATS client's default
/// was 2 minutes a ping, two pings unanswered), say so once, and carry on when it thaws. Most of its
/// time is that bound; it took 35 s while consume's fetch caught by the freeze waited for the NATS
/// client's default expiry (30 s and 5 of grace) before the reading published after the thaw was fetched.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryFrozenNatsTests : IDisposable
{
    private const int Lost = 1713;
    private const int Back = 1714;

    // Several times the documented bound (NatsConnections.StaleAfter), far below the 4-6 minutes it took.
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-frozen-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task AFrozenNatsServerIsNoticedByTheNodeAndByConsume() => FrozenAsync().WaitAsync(HardLimit);

    private async Task FrozenAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_FROZEN", Subject = "frozen.readings" };
        var nodeLog = new FakeLogger();
        var consumerLog = new FakeLogger();
        string device = new('9', 64);
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, nodeLog, budget.Token);
        await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, "telemetry.db"));
        var consumer = new JetStreamStoreConsumer(options, store, consumerLog);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token);
        Task consuming = consumer.RunAsync(stop.Token);
        try
        {
            await publisher.WriteAsync([new StoredReading(device, 1, "temp", 1, 1)], budget.Token);
            while (consumer.Stored < 1)
            {
                await Task.Delay(20, budget.Token);
            }

            // Idle, both of them, as a node between readings is: only the ping can tell.
            await nats.PauseAsync();
            while (Levels(nodeLog, Lost).Count == 0 || Levels(consumerLog, Lost).Count == 0)
            {
                await Task.Delay(100, budget.Token);
            }

            await nats.ResumeAsync();
            while (Levels(nodeLog, Back).Count == 0 || Levels(consumerLog, Back).Count == 0)
            {
                await Task.Delay(100, budget.Token);
            }

            await publisher.WriteAsync([new StoredReading(device, 2, "temp", 2, 2)], budget.Token);
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

        Assert.All([nodeLog, consumerLog], log =>
        {
            Assert.Equal([LogLevel.Warning], Levels(log, Lost));
            Assert.Equal([LogLevel.Information], Levels(log, Back));
        });
    }

    private static List<LogLevel> Levels(FakeLogger logger, int id) =>
        [.. logger.Collector.GetSnapshot().Where(r => r.Id.Id == id).Select(r => r.Level)];
}
