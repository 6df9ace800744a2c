using Microsoft.Extensions.Logging.Testing;
using NATS.Client.JetStream;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// nats-server answers a stream at its limits and a stream whose files it cannot write with the same
/// code, 10077. Only the first is waited out (consume makes room); the second is a failure of the
/// store, which the node reports as one (it stops, exit 1), not as a full stream it waits on forever.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryBrokenStreamTests
{
    private const int Full = 1715;
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    [Fact]
    public Task AStreamWhoseFilesCannotBeWrittenFailsTheWriteInsteadOfBeingWaitedOnAsFull() => BrokenAsync().WaitAsync(HardLimit);

    private static async Task BrokenAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var options = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_BROKEN", Subject = "broken.readings" };
        var logger = new FakeLogger();
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(options, logger, budget.Token);

        // The stream's message directory becomes a file: the open block still takes messages, and the
        // next block cannot be created. Filled until that happens (nats-server answers 10077, "Error
        // creating msg block file ... not a directory"); from then on every message is refused alike.
        string messages = Path.Combine(nats.StoreDirectory, "jetstream", "$G", "streams", options.Stream, "msgs");
        Directory.Move(messages, messages + ".moved");
        await File.WriteAllBytesAsync(messages, [], budget.Token);
        await using (var client = new NatsClient(nats.Url))
        {
            INatsJSContext js = client.CreateJetStreamContext();
            while ((await js.PublishAsync(options.Subject + ".filler", new byte[512 * 1024], cancellationToken: budget.Token)).Error is null)
            {
            }
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token);
        Task write = publisher.WriteAsync([new StoredReading(new string('b', 64), 1, "temp", 1, 1)], stop.Token).AsTask();
        try
        {
            while (!logger.Collector.GetSnapshot().Any(record => record.Id.Id == Full) && !write.IsCompleted)
            {
                await Task.Delay(50, budget.Token);
            }

            // Before, it was held back as "full" (event 1715: is consume keeping up?) and published
            // again every 5 s for ever, its devices waiting, while nothing could ever make room.
            Assert.DoesNotContain(logger.Collector.GetSnapshot(), record => record.Id.Id == Full);
            NatsJSApiException failed = await Assert.ThrowsAsync<NatsJSApiException>(() => write);
            Assert.Equal(10077, failed.Error.ErrCode);
            Assert.Contains("not a directory", failed.Error.Description, StringComparison.Ordinal);
        }
        finally
        {
            await stop.CancelAsync();
            await write.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }
}
