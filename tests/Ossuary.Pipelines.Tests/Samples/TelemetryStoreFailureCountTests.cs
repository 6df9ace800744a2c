using System.Globalization;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Samples.Telemetry.Load;
using Ossuary.Samples.Telemetry.Server;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>Loss shows: when the store fails, the error says how many queued readings went unstored, not only the batch it failed on.</summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryStoreFailureCountTests
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    [Fact]
    public Task AStoreFailureLogsEveryQueuedReadingItDidNotStore() => FailWithAFullQueueAsync().WaitAsync(HardLimit);

    private static async Task FailWithAFullQueueAsync()
    {
        const int Capacity = 8;
        const int Batch = 2;
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();
        using var log = new FakeLoggerProvider();
        var store = new FailingWhenToldStore();
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [device.PublicKey],
            Store = store,
            QueueCapacity = Capacity,
            BatchSize = Batch,
            LoggerProvider = log,
        });
        try
        {
            Task<LoadResult> load = LoadGenerator.RunAsync(new LoadOptions
            {
                Server = server.EndPoint,
                ServerKey = serverKey.PublicKey,
                Devices = [device],
                ReadingsPerDevice = 1_000,
                Interval = TimeSpan.Zero,
            }, cancellationToken: budget.Token);

            // The store holds its first batch; the queue behind it is full.
            while (server.Queue.Count < Capacity)
            {
                await Task.Delay(10, budget.Token);
            }

            store.Fail();
            await load;
        }
        finally
        {
            await Assert.ThrowsAsync<IOException>(async () => await server.DisposeAsync());
        }

        FakeLogRecord failed = Assert.Single(log.Collector.GetSnapshot(), r => r.Id.Id == 1701);
        long notStored = server.Queue.Enqueued - server.Writer.Persisted;
        Assert.Equal(Batch + Capacity, notStored);
        Assert.Equal(notStored.ToString(CultureInfo.InvariantCulture), failed.GetStructuredStateValue("Count"));
    }

    /// <summary>A store whose first write waits until <see cref="Fail"/>, then fails as a full disk does.</summary>
    private sealed class FailingWhenToldStore : IReadingStore
    {
        private readonly TaskCompletionSource _fail = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Fail() => _fail.TrySetResult();

        public async ValueTask WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken)
        {
            await _fail.Task.WaitAsync(cancellationToken);
            throw new IOException("disk I/O error: no space left on device");
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
