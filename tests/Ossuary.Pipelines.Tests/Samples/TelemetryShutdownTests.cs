using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.Load;
using Ossuary.Samples.Telemetry.Server;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>Shutdown stores everything received, also when the store is too slow for Kestrel's shutdown timeout.</summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryShutdownTests
{
    // Kestrel waits the host's shutdown timeout (30 s by default) for connections to close, then 1 s after aborting them.
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(150);

    // The server's shutdown timeout where a test waits it out: Kestrel gives up on the connection as
    // it would after the default 30 s, only sooner.
    private static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(2);

    [Fact]
    public Task AReadingAHandlerParsedBeforeKestrelGaveUpOnItsConnectionIsStored() => OutliveKestrelAsync().WaitAsync(HardLimit);

    [Fact]
    public Task AReadingThatCrossedTheServersDisconnectFailsItsDevice() => CrossDisconnectAsync().WaitAsync(HardLimit);

    private static async Task CrossDisconnectAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [device.PublicKey],
            Store = new StalledStore(opened: true),
        });
        await using var proxy = new HoldingProxy(server.EndPoint);
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        Task<LoadResult> load = LoadGenerator.RunAsync(new LoadOptions
        {
            Server = proxy.EndPoint,
            ServerKey = serverKey.PublicKey,
            Devices = [device],
            ReadingsPerDevice = 2,
            Interval = TimeSpan.FromSeconds(1),
        }, time, budget.Token);
        while (server.Registry.Find(device.PublicKey)?.Readings is not 1)
        {
            await Task.Delay(10, budget.Token);
        }

        // The server stops (its Disconnect held on the way) while the device, unaware, sends its last
        // reading: its flush succeeds, and the server, gone, never reads it.
        proxy.HoldReplies();
        await server.DisposeAsync();
        long sent = proxy.BytesFromClients;
        time.Advance(TimeSpan.FromSeconds(1));
        while (proxy.BytesFromClients == sent) // the last reading has left the device before the Disconnect reaches it
        {
            await Task.Delay(10, budget.Token);
        }

        proxy.ReleaseReplies();
        LoadResult result = await load;

        Assert.Equal(1, server.Registry.Find(device.PublicKey)!.Readings);
        DeviceRun run = Assert.Single(result.Devices);
        Assert.True(run.Error is not null, $"the device reported its {run.Sent} reading(s) delivered; the server received 1");
        Assert.Equal(1, result.Failed);
    }

    private static async Task OutliveKestrelAsync()
    {
        const int Capacity = 4;
        const int Batch = 2;
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();
        using var log = new FakeLoggerProvider();
        var store = new StalledStore();
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [device.PublicKey],
            Store = store,
            QueueCapacity = Capacity,
            BatchSize = Batch,
            LoggerProvider = log,
            LogLevel = LogLevel.Debug,
            ShutdownTimeout = ShutdownTimeout,
        });
        Task<LoadResult> load = LoadGenerator.RunAsync(new LoadOptions
        {
            Server = server.EndPoint,
            ServerKey = serverKey.PublicKey,
            Devices = [device],
            ReadingsPerDevice = 1_000,
            Interval = TimeSpan.Zero,
        }, cancellationToken: budget.Token);

        // The store holds one batch, the queue is full, and the handler waits with one more reading it
        // has parsed and counted. The batch is what was queued when the writer looked (one reading or
        // Batch of them), so the count to wait for is read from the writer, not assumed.
        while (server.Writer.Writing == 0 || server.Registry.Snapshot().Sum(d => d.Readings) < server.Writer.Writing + Capacity + 1)
        {
            if (budget.IsCancellationRequested || load.IsCompleted)
            {
                Assert.Fail($"the server did not fill up (device ended: {load.IsCompleted}): parsed {server.Registry.Snapshot().Sum(d => d.Readings)}, "
                    + $"queued {server.Queue.Count} of {Capacity}, in the store's hands {server.Writer.Writing}");
            }

            await Task.Delay(10, CancellationToken.None);
        }

        // Ctrl+C while the store is stalled: Kestrel waits for the connection, aborts it, and gives up
        // on the handler, which is still waiting for room in the queue.
        Task stopping = server.DisposeAsync().AsTask();
        while (!log.Collector.GetSnapshot().Any(r => r.Id.Name == "NotAllConnectionsAborted" || r.Message.Contains("failed to abort", StringComparison.OrdinalIgnoreCase)))
        {
            if (budget.IsCancellationRequested || stopping.IsCompleted)
            {
                Assert.Fail($"Kestrel did not give up on the connection (stop ended: {stopping.IsCompleted}, sessions ended: {server.Registry.SessionsEnded}); the log:\n"
                    + string.Join("\n", log.Collector.GetSnapshot().Select(r => $"{r.Level} {r.Category} {r.Id}: {r.Message} {r.Exception?.GetType().Name} {r.Exception?.Message}")));
            }

            await Task.Delay(50, CancellationToken.None);
        }

        // Were the handler let go now, it would end within milliseconds; with the store still stalled
        // it must not (it has a reading to queue). The wait only bounds the look, it asserts nothing.
        using (var look = CancellationTokenSource.CreateLinkedTokenSource(budget.Token))
        {
            look.CancelAfter(TimeSpan.FromSeconds(5));
            while (server.Registry.SessionsEnded == 0 && !look.IsCancellationRequested)
            {
                await Task.Delay(10, CancellationToken.None);
            }
        }

        store.Open();
        await stopping;
        await load;

        long parsed = server.Registry.Snapshot().Sum(d => d.Readings);
        Assert.True(parsed == server.Writer.Persisted, $"received {parsed} reading(s), stored {server.Writer.Persisted}");
        Assert.Equal(Enumerable.Range(1, (int)parsed).Select(i => (long?)i), store.Sequences());
    }

    /// <summary>A store that blocks every write until <see cref="Open"/>.</summary>
    private sealed class StalledStore(bool opened = false) : IReadingStore
    {
        private readonly TaskCompletionSource _open = Gate(opened);
        private readonly ConcurrentQueue<StoredReading> _stored = new();

        public void Open() => _open.TrySetResult();

        private static TaskCompletionSource Gate(bool opened)
        {
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (opened)
            {
                gate.SetResult();
            }

            return gate;
        }

        public IEnumerable<long?> Sequences() => _stored.Select(r => r.Sequence).Order();

        public async ValueTask<int> WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken)
        {
            await _open.Task.WaitAsync(cancellationToken);
            foreach (StoredReading reading in batch)
            {
                _stored.Enqueue(reading);
            }

            return batch.Count;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
