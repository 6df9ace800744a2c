using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Samples.Telemetry.Keys;
using Ossuary.Samples.Telemetry.Load;
using Ossuary.Samples.Telemetry.Server;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>The telemetry sample's store: readings survive a restart, a slow store slows the devices instead of dropping or hoarding readings.</summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryStoreTests : IDisposable
{
    // Within the last hour, for --since 1h; the same for every run of a test, so that a run's resends are the readings the earlier run sent.
    private static readonly DateTimeOffset ReadingsTaken = DateTimeOffset.UtcNow.AddMinutes(-1);

    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-store-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task ReadingsSurviveAServerRestartAndAResendIsStoredOnce() => SurviveRestartAsync().WaitAsync(HardLimit);

    [Fact]
    public Task ASlowStoreSlowsTheDevicesWithABoundedQueueAndLosesNothing() => SlowStoreAsync().WaitAsync(HardLimit);

    [Fact]
    public Task EverySensorNameIsStoredAsSentHoweverManyTheFleetUses() => SensorNamesAsync().WaitAsync(HardLimit);

    [Fact]
    public Task ASensorNameCannotWriteControlCharactersToTheOperatorsTerminal() => ControlCharactersAsync().WaitAsync(HardLimit);

    [Fact]
    public async Task AFileAnEarlierVersionMadeKeepsItsReadingsAndStoresARedeliveryOnce()
    {
        // The readings table as earlier versions made it: no origin column.
        string database = Path.Combine(_directory, "old.db");
        using (var old = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={database};Pooling=False"))
        {
            old.Open();
            using Microsoft.Data.Sqlite.SqliteCommand create = old.CreateCommand();
            create.CommandText = """
                PRAGMA journal_mode=WAL;
                CREATE TABLE devices (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
                CREATE TABLE readings (device INTEGER NOT NULL REFERENCES devices(id), seq INTEGER, sensor TEXT NOT NULL, value REAL NOT NULL, ts INTEGER NOT NULL);
                CREATE UNIQUE INDEX readings_device_seq ON readings(device, seq);
                INSERT INTO devices(key) VALUES('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
                INSERT INTO readings VALUES(1, 1, 'temp', 1, 1), (1, NULL, 'temp', 2, 2);
                """;
            create.ExecuteNonQuery();
        }

        string device = new('a', 64);
        await using (SqliteReadingStore store = SqliteReadingStore.Open(database))
        {
            StoredReading redelivered = new(device, null, "temp", 3, 3, "node-1");
            await store.WriteAsync([redelivered, new StoredReading(device, 1, "temp", 1, 1)], CancellationToken.None);
            await store.WriteAsync([redelivered], CancellationToken.None);
        }

        // Opened again (the column is there now), and still read by query.
        await using (SqliteReadingStore.Open(database))
        {
        }

        Assert.Equal([1, 2, 3], ReadingQueries.Readings(database, device, 0).Select(r => r.Value));
    }

    [Fact]
    public void SequenceNumbersShowGapsAndResends()
    {
        using var key = OssuaryIdentity.Generate();
        var stats = new DeviceStats(key.PublicKey, TimeProvider.System);
        foreach (long seq in new long[] { 7, 8, 10, 13, 13, 9 })
        {
            stats.Record("temp", 1, seq);
        }

        DeviceSnapshot snapshot = stats.Snapshot();
        Assert.Equal(2, snapshot.Gaps); // 11 and 12; 9 arrived late and filled its gap
        Assert.Equal(1, snapshot.Repeats); // the second 13
    }

    private async Task SurviveRestartAsync()
    {
        const int Devices = 6;
        const int Readings = 20;
        using var budget = new CancellationTokenSource(HardLimit);
        Fleet fleet = Fleet.Generate(Path.Combine(_directory, "fleet"), Devices);
        string database = Path.Combine(_directory, "telemetry.db");
        IReadOnlyList<OssuaryIdentity> devices = fleet.LoadDevices(Devices);
        try
        {
            // First run: sequence 1..20. Second run (a new server on the same file): the devices resend
            // 11..20, as a device does that never learned whether they arrived, and go on to 40.
            await RunServerAsync(fleet, database, devices, firstSequence: 1, Readings, resent: 0, budget.Token);
            IReadOnlyList<DeviceTotals> afterFirst = ReadingQueries.Totals(database);
            Assert.Equal(Devices, afterFirst.Count);
            Assert.All(afterFirst, device => Assert.Equal((Readings, 1L, (long?)Readings, 0L), (device.Readings, device.FirstSequence!.Value, device.LastSequence, device.Missing)));

            await RunServerAsync(fleet, database, devices, firstSequence: 11, 30, resent: 10, budget.Token);
            IReadOnlyList<DeviceTotals> totals = ReadingQueries.Totals(database);
            Assert.Equal(devices.Select(d => d.PublicKey.ToString()).Order(StringComparer.Ordinal), totals.Select(t => t.Device));
            Assert.All(totals, device => Assert.Equal((40L, 1L, (long?)40, 0L), (device.Readings, device.FirstSequence!.Value, device.LastSequence, device.Missing)));

            string first = devices[0].PublicKey.ToString();
            IReadOnlyList<StoredReading> readings = ReadingQueries.Readings(database, first, sinceMs: 0);
            Assert.Equal(Enumerable.Range(1, 40).Select(i => (long?)i), readings.Select(r => r.Sequence).Order());
            Assert.All(readings, r => Assert.Equal(first, r.Device));

            // --since filters on the reading's time: nothing is newer than now + 1 h.
            Assert.Empty(ReadingQueries.Readings(database, first, DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeMilliseconds()));

            // The same through the query command, as an operator runs it: totals, then one device by
            // a key prefix and an age.
            (int code, string stdout, string stderr) = await TelemetryCommandLineTests.RunAsync(_directory, "query", "--db", database);
            Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
            Assert.Contains($"{Devices} device(s), {Devices * 40} reading(s), 0 missing sequence number(s)", stdout, StringComparison.Ordinal);
            (code, stdout, stderr) = await TelemetryCommandLineTests.RunAsync(_directory, "query", "--db", database, "--device", first[..12], "--since", "1h");
            Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
            Assert.Equal(40, stdout.Split('\n').Count(line => line.Contains("  seq=", StringComparison.Ordinal)));
            Assert.Contains($"40 reading(s) of {first}", stdout, StringComparison.Ordinal);
            (code, _, stderr) = await TelemetryCommandLineTests.RunAsync(_directory, "query", "--db", database, "--device", first, "--since", "yesterday-ish");
            Assert.Equal(2, code);
            Assert.Contains("--since must be", stderr, StringComparison.Ordinal);
        }
        finally
        {
            foreach (OssuaryIdentity device in devices)
            {
                device.Dispose();
            }
        }
    }

    private async Task SensorNamesAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var noisy = OssuaryIdentity.Generate();
        using var quiet = OssuaryIdentity.Generate();
        string database = Path.Combine(_directory, "telemetry.db");
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [noisy.PublicKey, quiet.PublicKey],
            DatabasePath = database,
        });
        string longName = new('n', 100);
        try
        {
            // One device uses more distinct names than the server keeps shared copies of; then another
            // device reports a name nobody used before, and a long one.
            var noisyLines = new StringBuilder();
            for (int i = 1; i <= SensorNames.Capacity + 10; i++)
            {
                noisyLines.Append(CultureInfo.InvariantCulture, $"sensor=probe-{i} value={i} seq={i}\n");
            }

            await SendAsync(server, serverKey, noisy, noisyLines.ToString(), budget.Token);
            await SendAsync(server, serverKey, quiet, $"sensor=temp value=1 seq=1\nsensor={longName} value=2 seq=2\n", budget.Token);
            while (server.Registry.SessionsEnded < 2)
            {
                await Task.Delay(10, budget.Token);
            }
        }
        finally
        {
            await server.DisposeAsync();
        }

        Assert.Equal(["temp", longName], ReadingQueries.Readings(database, quiet.PublicKey.ToString(), 0).OrderBy(r => r.Sequence).Select(r => r.Sensor));
        IReadOnlyList<StoredReading> noisyReadings = ReadingQueries.Readings(database, noisy.PublicKey.ToString(), 0);
        Assert.Equal(SensorNames.Capacity + 10, noisyReadings.Count);
        Assert.All(noisyReadings, r => Assert.Equal($"probe-{r.Sequence}", r.Sensor));
    }

    private async Task ControlCharactersAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();
        string database = Path.Combine(_directory, "telemetry.db");
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [device.PublicKey],
            DatabasePath = database,
        });
        try
        {
            // An escape sequence that clears the screen, a carriage return that overwrites the row, and
            // a right-to-left override (U+202E) that reorders what follows: a device's bytes, not the server's output.
            await SendAsync(server, serverKey, device, "sensor=\u001b[2J\rfake\u202E value=1 seq=1\n", budget.Token);
            while (server.Registry.SessionsEnded < 1)
            {
                await Task.Delay(10, budget.Token);
            }
        }
        finally
        {
            await server.DisposeAsync();
        }

        using var table = new StringWriter();
        new SummaryReporter(server.Registry, table).Report();
        AssertPrintable(table.ToString());
        (int code, string stdout, string stderr) = await TelemetryCommandLineTests.RunAsync(_directory, "query", "--db", database, "--device", device.PublicKey.ToString());
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("seq=1", stdout, StringComparison.Ordinal);
        AssertPrintable(stdout);

        // Stored as sent: only what is printed is escaped.
        Assert.Equal("\u001b[2J\rfake\u202E", Assert.Single(ReadingQueries.Readings(database, device.PublicKey.ToString(), 0)).Sensor);

        static void AssertPrintable(string output)
        {
            string lines = output.Replace(Environment.NewLine, "\n", StringComparison.Ordinal);
            Assert.DoesNotContain(lines, c => c != '\n' && (char.IsControl(c) || char.GetUnicodeCategory(c) == UnicodeCategory.Format));
        }
    }

    private static async Task SendAsync(TelemetryServer server, OssuaryIdentity serverKey, OssuaryIdentity device, string lines, CancellationToken cancellationToken)
    {
        var options = new OssuaryClientOptions { Identity = device };
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options, cancellationToken);
        await connection.Transport.Output.WriteAsync(Encoding.UTF8.GetBytes(lines), cancellationToken);
    }

    /// <summary>Runs a server on <paramref name="database"/> while each device sends <paramref name="readings"/>, the first <paramref name="resent"/> of which the file holds already.</summary>
    private static async Task RunServerAsync(Fleet fleet, string database, IReadOnlyList<OssuaryIdentity> devices, long firstSequence, int readings, int resent, CancellationToken cancellationToken)
    {
        using OssuaryIdentity serverKey = KeyFiles.ReadSecretKey(fleet.ServerKeyPath);
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Address = IPAddress.Loopback,
            Identity = serverKey,
            AuthorizedDevices = devices.Select(d => d.PublicKey).ToList(),
            DatabasePath = database,
        });
        try
        {
            LoadResult result = await LoadGenerator.RunAsync(new LoadOptions
            {
                Server = server.EndPoint,
                ServerKey = serverKey.PublicKey,
                Devices = devices,
                ReadingsPerDevice = readings,
                FirstSequence = firstSequence,
                Interval = TimeSpan.Zero,
                // A resend is the same reading again: stamped as the first run stamped it, not anew.
                TimeOrigin = ReadingsTaken,
            }, cancellationToken: cancellationToken);
            Assert.All(result.Devices, run => Assert.Null(run.Error));

            // Every device has closed; the server normally finishes each connection within
            // milliseconds. The wait is only a hang guard: if it runs out, the counts below say what
            // is missing instead of the test timing out without a reason (seen once in a full run).
            using var guard = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            guard.CancelAfter(TimeSpan.FromSeconds(30));
            while (server.Registry.SessionsEnded < devices.Count && !guard.IsCancellationRequested)
            {
                await Task.Delay(10, CancellationToken.None);
            }
        }
        finally
        {
            // Stopping drains the queue into the file before it returns.
            await server.DisposeAsync();
        }

        IReadOnlyList<DeviceSnapshot> seen = server.Registry.Snapshot();
        Assert.True(
            devices.Count * (long)readings == server.Writer.Persisted,
            $"stored {server.Writer.Persisted} of {devices.Count * (long)readings}; sessions ended {server.Registry.SessionsEnded} of {devices.Count}; " +
            $"devices seen {seen.Count}: {string.Join(", ", seen.Select(d => $"{d.ShortKey} {d.Readings} readings, {d.Sessions} sessions, {d.Connections} open"))}");

        // What the server's stop line reports as resent and ignored, rather than as stored again.
        Assert.Equal(devices.Count * (long)resent, server.Writer.Duplicates);
    }

    private static async Task SlowStoreAsync()
    {
        const int Devices = 4;
        const int Readings = 500;
        const int Capacity = 32;
        const int Batch = 16;
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        OssuaryIdentity[] devices = Enumerable.Range(0, Devices).Select(_ => OssuaryIdentity.Generate()).ToArray();
        var store = new GatedStore();
        try
        {
            TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
            {
                Identity = serverKey,
                AuthorizedDevices = devices.Select(d => d.PublicKey).ToList(),
                Store = store,
                QueueCapacity = Capacity,
                BatchSize = Batch,
            });
            LoadResult result;
            try
            {
                Task<LoadResult> load = LoadGenerator.RunAsync(new LoadOptions
                {
                    Server = server.EndPoint,
                    ServerKey = serverKey.PublicKey,
                    Devices = devices,
                    ReadingsPerDevice = Readings,
                    Interval = TimeSpan.Zero,
                }, cancellationToken: budget.Token);

                // The store does not answer: the writer holds one batch, the queue fills, and then the
                // handlers stop reading. What they have parsed stays bounded by the queue, not by what the
                // devices sent (their bytes wait in the pipes and TCP buffers, bounded too).
                while (server.Queue.Count < Capacity)
                {
                    await Task.Delay(10, budget.Token);
                }

                long bound = Capacity + Batch + Devices; // queued + held by the writer + one waiting per handler
                for (int i = 0; i < 20; i++)
                {
                    await Task.Delay(25, budget.Token);
                    long parsed = server.Registry.Snapshot().Sum(d => d.Readings);
                    Assert.InRange(parsed, Capacity, bound);
                }

                Assert.False(load.IsCompleted && server.Registry.SessionsEnded == Devices, "every device finished while the store was stalled");

                // The store comes back, slowly (a millisecond per batch): everything arrives.
                store.Open();
                result = await load;
                while (server.Registry.SessionsEnded < Devices)
                {
                    await Task.Delay(10, budget.Token);
                }
            }
            finally
            {
                store.Open();
                await server.DisposeAsync();
            }

            Assert.All(result.Devices, run => Assert.Null(run.Error));
            Assert.Equal(Devices * (long)Readings, server.Writer.Persisted);
            foreach (OssuaryIdentity device in devices)
            {
                Assert.Equal(Enumerable.Range(1, Readings).Select(i => (long?)i), store.Sequences(device.PublicKey.ToString()));
            }
        }
        finally
        {
            foreach (OssuaryIdentity device in devices)
            {
                device.Dispose();
            }
        }
    }

    /// <summary>A store that blocks every write until <see cref="Open"/>, then takes a millisecond per batch.</summary>
    private sealed class GatedStore : IReadingStore
    {
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly ConcurrentQueue<StoredReading> _stored = new();

        public void Open() => _open.TrySetResult();

        public IEnumerable<long?> Sequences(string device) => _stored.Where(r => r.Device == device).Select(r => r.Sequence);

        public async ValueTask<int> WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken)
        {
            await _open.Task.WaitAsync(cancellationToken);
            await Task.Delay(1, cancellationToken);
            foreach (StoredReading reading in batch)
            {
                _stored.Enqueue(reading);
            }

            return batch.Count;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
