using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Samples.Telemetry.Load;
using Ossuary.Samples.Telemetry.Server;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// A store failure ends the connections (none stays open to take readings nobody will store) and
/// stops the server: its queue is closed for good, so it must not go on looking alive. The loss
/// shows: the error counts every queued reading that went unstored, not only the batch it failed on.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryStoreFailureTests
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    [Fact]
    public Task AStoreFailureEndsIdleConnectionsRefusesNewOnesReadingsAndStopsTheServer() => FailAsync().WaitAsync(HardLimit);

    [Fact]
    public Task AConnectionEndedByAStoreFailureLogsTheStoresReason() => LogReasonAsync().WaitAsync(HardLimit);

    [Fact]
    public Task AStoreFailureLogsEveryQueuedReadingItDidNotStore() => FailWithAFullQueueAsync().WaitAsync(HardLimit);

    [Fact]
    public Task ADeviceWhoseReadingsTheStoreFailedOnIsNotToldTheyWereTaken() => AcknowledgeAsync().WaitAsync(HardLimit);

    [Fact]
    public Task AStoreFailureIsSaidOnceAtWarningNotOncePerConnection() => SayOnceAsync().WaitAsync(HardLimit);

    private static async Task SayOnceAsync()
    {
        const int Devices = 5;
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        OssuaryIdentity[] devices = [.. Enumerable.Range(0, Devices).Select(_ => OssuaryIdentity.Generate())];
        using var log = new FakeLoggerProvider();
        var store = new FailingStore();
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [.. devices.Select(d => d.PublicKey)],
            Store = store,
            LoggerProvider = log,
            LogLevel = LogLevel.Debug,
        });
        var connections = new List<OssuaryClientConnection>();
        try
        {
            foreach (OssuaryIdentity device in devices)
            {
                connections.Add(await ConnectAsync(server, serverKey, device, budget.Token));
            }

            while (server.Registry.Totals().Connected < Devices)
            {
                await Task.Delay(10, budget.Token);
            }

            // One reading fails the store; every connection ends with it.
            await connections[0].Transport.Output.WriteAsync("sensor=temp value=1 seq=1\n"u8.ToArray(), budget.Token);
            while (server.Registry.SessionsEnded < Devices)
            {
                await Task.Delay(10, budget.Token);
            }
        }
        finally
        {
            await Assert.ThrowsAsync<IOException>(async () => await server.DisposeAsync());
            foreach (OssuaryClientConnection connection in connections)
            {
                await connection.DisposeAsync();
            }

            foreach (OssuaryIdentity device in devices)
            {
                device.Dispose();
            }
        }

        // One line for the operator, with the store's reason; the other connections' ends only at Debug.
        FakeLogRecord[] ended = [.. log.Collector.GetSnapshot().Where(r => r.Category == typeof(TelemetryConnectionHandler).FullName)];
        FakeLogRecord warning = Assert.Single(ended, r => r.Level >= LogLevel.Warning);
        Assert.Contains("no space left on device", warning.Message, StringComparison.Ordinal);
        Assert.Equal(Devices - 1, ended.Count(r => r.Level == LogLevel.Debug && r.Message.Contains("store", StringComparison.Ordinal)));
    }

    private static async Task AcknowledgeAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();
        var store = new FailingStore(held: true);
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [device.PublicKey],
            Store = store,
        });
        string answer;
        try
        {
            // Three readings and a sync in one write: the server parses them in one pass. The store
            // holds the readings' batch, then its disk fails: none of them is stored.
            await using OssuaryClientConnection connection = await ConnectAsync(server, serverKey, device, budget.Token);
            await connection.Transport.Output.WriteAsync("sensor=t value=1 seq=1\nsensor=t value=2 seq=2\nsensor=t value=3 seq=3\nsync\n"u8.ToArray(), budget.Token);
            Task<string> answering = AnswerAsync(connection.Transport.Input, budget.Token);
            while (server.Registry.Find(device.PublicKey)?.Readings is not 3)
            {
                await Task.Delay(10, budget.Token);
            }

            // An answer given for readings still held by the store comes now; one given once they are
            // stored never does. The wait only gives the first a chance to show, it asserts nothing.
            await Task.WhenAny(answering, Task.Delay(TimeSpan.FromSeconds(2), budget.Token));
            store.Fail();
            answer = await answering;
        }
        finally
        {
            await Assert.ThrowsAsync<IOException>(async () => await server.DisposeAsync());
        }

        Assert.Equal(0, server.Writer.Persisted);
        Assert.False(answer.StartsWith("ok", StringComparison.Ordinal), $"the device was told '{answer}' for readings the store failed on");
    }

    /// <summary>What the server answered, or how the connection ended instead.</summary>
    private static async Task<string> AnswerAsync(PipeReader input, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync(cancellationToken);
                string text = System.Text.Encoding.ASCII.GetString(read.Buffer.ToArray());
                if (text.Contains('\n', StringComparison.Ordinal) || read.IsCompleted)
                {
                    return read.IsCompleted && text.Length == 0 ? "(closed)" : text.TrimEnd('\n');
                }

                input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
            }
        }
        catch (OssuaryException ex)
        {
            return $"({ex.Reason})";
        }
    }

    private static async Task LogReasonAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();
        using var log = new FakeLoggerProvider();
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [device.PublicKey],
            Store = new FailingStore(),
            LoggerProvider = log,
        });
        try
        {
            await using OssuaryClientConnection connection = await ConnectAsync(server, serverKey, device, budget.Token);
            await connection.Transport.Output.WriteAsync("sensor=temp value=1 seq=1\n"u8.ToArray(), budget.Token);
            await connection.Transport.Output.WriteAsync("sensor=temp value=1 seq=2\n"u8.ToArray(), budget.Token);
            Assert.True(await EndedAsync(connection.Transport.Input, budget.Token), "the connection stayed open after the store failed");
            while (server.Registry.SessionsEnded < 1)
            {
                await Task.Delay(10, budget.Token);
            }
        }
        finally
        {
            await Assert.ThrowsAsync<IOException>(async () => await server.DisposeAsync());
        }

        // The operator reading this line learns why, not "see the inner exception" with none attached.
        FakeLogRecord ended = Assert.Single(log.Collector.GetSnapshot(), r => r.Category == typeof(TelemetryConnectionHandler).FullName && r.Level == LogLevel.Warning);
        Assert.Contains("no space left on device", ended.Message, StringComparison.Ordinal);
    }

    private static async Task FailAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var first = OssuaryIdentity.Generate();
        using var later = OssuaryIdentity.Generate();
        var store = new FailingStore();
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [first.PublicKey, later.PublicKey],
            Store = store,
        });
        try
        {
            // The first device's reading is queued, and the store fails on it: the device then sits
            // idle with its connection open, as a device between two readings does.
            await using OssuaryClientConnection idle = await ConnectAsync(server, serverKey, first, budget.Token);
            await idle.Transport.Output.WriteAsync("sensor=temp value=1 seq=1\n"u8.ToArray(), budget.Token);
            await store.Failed.WaitAsync(budget.Token);

            // The server must end it now, not when the device next sends (and have that reading counted, then dropped).
            Assert.True(await EndedAsync(idle.Transport.Input, budget.Token), "the idle device's connection stayed open after the store failed");

            // A device that connects after the failure is refused (the server is stopping) or ended
            // before any of its readings is taken.
            if (await TryConnectAsync(server, serverKey, later, budget.Token) is { } late)
            {
                await using (late)
                {
                    await late.Transport.Output.WriteAsync("sensor=temp value=2 seq=1\n"u8.ToArray(), budget.Token);
                    Assert.True(await EndedAsync(late.Transport.Input, budget.Token), "a device connecting after the store failed kept its connection");
                }

                while (server.Registry.SessionsEnded < 2)
                {
                    await Task.Delay(10, budget.Token);
                }
            }

            Assert.Equal(0, server.Registry.Find(later.PublicKey)?.Readings ?? 0);

            // Nobody asked it to stop: the failure did (a hang guard, not a timing).
            var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (server.Stopping.Register(stopping.SetResult))
            {
                await stopping.Task.WaitAsync(TimeSpan.FromSeconds(20), budget.Token);
            }
        }
        finally
        {
            await Assert.ThrowsAsync<IOException>(async () => await server.DisposeAsync());
        }
    }

    /// <summary>The connection, or null if the server refused the TCP connection or ended it during the handshake.</summary>
    private static async Task<OssuaryClientConnection?> TryConnectAsync(TelemetryServer server, OssuaryIdentity serverKey, OssuaryIdentity device, CancellationToken cancellationToken)
    {
        try
        {
            return await ConnectAsync(server, serverKey, device, cancellationToken);
        }
        catch (System.Net.Sockets.SocketException)
        {
            return null;
        }
        catch (OssuaryException ex) when (ex.Reason is OssuaryErrorReason.ConnectionFailed)
        {
            return null;
        }
    }

    private static async Task<OssuaryClientConnection> ConnectAsync(TelemetryServer server, OssuaryIdentity serverKey, OssuaryIdentity device, CancellationToken cancellationToken)
    {
        var options = new OssuaryClientOptions { Identity = device };
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        return await OssuaryClient.ConnectAsync(server.EndPoint, options, cancellationToken);
    }

    /// <summary>True once the server has ended the connection (cleanly or not); false if it still holds it after a generous wait.</summary>
    private static async Task<bool> EndedAsync(PipeReader input, CancellationToken cancellationToken)
    {
        // A hang guard, not a timing: a server that ends the connection does so within milliseconds.
        using var guard = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        guard.CancelAfter(TimeSpan.FromSeconds(20));
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync(guard.Token);
                input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    return true;
                }
            }
        }
        catch (IOException)
        {
            return true;
        }
        catch (OperationCanceledException) when (guard.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private static async Task FailWithAFullQueueAsync()
    {
        const int Capacity = 8;
        const int Batch = 2;
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();
        using var log = new FakeLoggerProvider();
        var store = new FailingStore(held: true);
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

            // The store holds its first batch; the queue behind it is full. Both: a queue can fill before the writer
            // takes its batch, and failing the store then let the writer take two and the device queue only one more.
            while (store.HeldBatch == 0 || server.Queue.Count < Capacity)
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
        // The held batch is whatever the writer found queued when it took it: a full one, or under load
        // the first reading alone (the test once read 9 for 10 that way).
        long notStored = server.Queue.Enqueued - server.Writer.Persisted;
        Assert.InRange(store.HeldBatch, 1, Batch);
        Assert.Equal(store.HeldBatch + Capacity, notStored);
        Assert.Equal(notStored.ToString(CultureInfo.InvariantCulture), failed.GetStructuredStateValue("Count"));
    }

    /// <summary>A store whose disk is full: at its first write, or (held) once told to <see cref="Fail"/>.</summary>
    private sealed class FailingStore(bool held = false) : IReadingStore
    {
        private readonly TaskCompletionSource _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Failed => _failed.Task;

        /// <summary>How many readings the write that was held (the first) carried.</summary>
        public int HeldBatch { get => Volatile.Read(ref _heldBatch); private set => Volatile.Write(ref _heldBatch, value); }

        private int _heldBatch;

        public void Fail() => _release.TrySetResult();

        public async ValueTask<int> WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken)
        {
            if (held)
            {
                HeldBatch = HeldBatch == 0 ? batch.Count : HeldBatch;
                await _release.Task.WaitAsync(cancellationToken);
            }

            _failed.TrySetResult();
            throw new IOException("disk I/O error: no space left on device");
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
