using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using NATS.Client.JetStream;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// The <c>store</c> consumer, or its whole stream, removed under a running <c>consume</c> (an operator
/// replacing an old stream, event 1712, or an acknowledge-all consumer, as the README says to): consume
/// makes them again, as it does when it starts, says so once (event 1722, Warning), and stores what the
/// nodes publish afterwards. Its fetches
/// from the removed consumer were answered "no responders", which the NATS client ends as an empty fetch:
/// consume stored nothing more, and said so only at Debug (event 1719), once a second.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryRemovedConsumerTests : IDisposable
{
    private const int MadeAgain = 1722;
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-removed-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public Task ConsumeMakesAgainAConsumerRemovedUnderItAndStoresWhatComesAfter(bool wholeStream) => RemovedAsync(wholeStream).WaitAsync(HardLimit);

    private async Task RemovedAsync(bool wholeStream)
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_REMOVED", Subject = "removed.readings" };
        string device = new('c', 64);
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, budget.Token);
        await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, "telemetry.db"));
        var logger = new FakeLogger();
        var consumer = new JetStreamStoreConsumer(options, store, logger);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token);
        Task consuming = consumer.RunAsync(stop.Token);
        try
        {
            await publisher.WriteAsync([new StoredReading(device, 1, "temp", 1, 1)], budget.Token);
            await ConsumerProgress.WaitForAsync(() => consumer.Stored == 1, consuming, budget.Token);

            await using var operatorClient = new NatsClient(nats.Url);
            INatsJSContext js = operatorClient.CreateJetStreamContext();
            if (wholeStream)
            {
                // As event 1712 says: the stream removed, and a node (here its publisher) makes it again.
                await js.DeleteStreamAsync(options.Stream, budget.Token);
                await (await JetStreamPublisher.ConnectAsync(options, budget.Token)).DisposeAsync();
            }
            else
            {
                await js.DeleteConsumerAsync(options.Stream, options.Consumer, budget.Token);
            }

            await publisher.WriteAsync([new StoredReading(device, 2, "temp", 2, 2)], budget.Token);
            await ConsumerProgress.WaitForAsync(() => consumer.Stored == 2, consuming, budget.Token);
        }
        finally
        {
            await stop.CancelAsync();
            await consuming;
        }

        Assert.Equal(2, consumer.Stored);
        Assert.Equal([LogLevel.Warning], logger.Collector.GetSnapshot().Where(r => r.Id.Id == MadeAgain).Select(r => r.Level));
    }
}
