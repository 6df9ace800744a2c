using System.Globalization;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Samples.Telemetry.Load;
using Ossuary.Samples.Telemetry.Server;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>The telemetry server's /metrics, scraped over HTTP as Prometheus would.</summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryMetricsTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120); // a hang guard: one run under load 8 needed more than 60 s

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-metrics-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task MetricsShowReadingsDevicesStoreAndTheLibrarysHandshakes() => ScrapeAsync().WaitAsync(HardLimit);

    [Fact]
    public Task TheStoreLagCountsTheBatchTheStoreIsStillWriting() => LagAsync().WaitAsync(HardLimit);

    [Fact]
    public Task NoCounterGoesDownWhenALateReadingFillsItsGap() => LateReadingAsync().WaitAsync(HardLimit);

    private async Task LateReadingAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();
        await using TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [device.PublicKey],
            DatabasePath = Path.Combine(_directory, "late.db"),
            MetricsPort = 0,
        });
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var scrape = new Uri($"http://{server.MetricsEndPoint}/metrics");

        // Reading 2 is missing, then arrives over a second connection (a reconnected device resending).
        await SendAsync(server, serverKey, device, "sensor=temp value=1 seq=1\nsensor=temp value=3 seq=3\n", 1, 2, budget.Token);
        string before = await ScrapeAsync(http, scrape, received: 2, budget.Token);
        await SendAsync(server, serverKey, device, "sensor=temp value=2 seq=2\n", 2, 3, budget.Token);
        Assert.Equal(0, server.Registry.Find(device.PublicKey)!.Gaps);
        string after = await ScrapeAsync(http, scrape, received: 3, budget.Token);

        // Prometheus takes any fall of a counter for a restart of the process: increase() and rate()
        // then add the whole new value, and an alert on lost readings fires for a reading that arrived.
        // The sample's own counters: the library's meter name is shared by every Ossuary connection
        // in this process (other tests' clients count on the process-wide meter), so its series can
        // appear twice with the same labels, and a CI run compared one with the other ("went from 60 to 4").
        Dictionary<string, double> counted = Counters(after);
        Assert.Contains(Counters(before).Keys, sample => sample.StartsWith("telemetry_readings_received_total", StringComparison.Ordinal));
        foreach ((string sample, double value) in Counters(before).Where(c => c.Key.StartsWith("telemetry_", StringComparison.Ordinal)))
        {
            Assert.True(counted.TryGetValue(sample, out double later) && later >= value, $"the counter {sample} went from {value} to {(counted.TryGetValue(sample, out double v) ? v : double.NaN)}");
        }

        // What is missing now is a level that falls when a reading fills its gap: a gauge.
        Assert.Equal(1, Value(before, "telemetry_readings_gaps"));
        Assert.Equal(0, Value(after, "telemetry_readings_gaps"));
    }

    private static async Task SendAsync(TelemetryServer server, OssuaryIdentity serverKey, OssuaryIdentity device, string lines, long sessionsEnded, long persisted, CancellationToken cancellationToken)
    {
        var options = new OssuaryClientOptions { Identity = device };
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options, cancellationToken))
        {
            await connection.Transport.Output.WriteAsync(System.Text.Encoding.ASCII.GetBytes(lines), cancellationToken);
        }

        while (server.Registry.SessionsEnded < sessionsEnded || server.Writer.Persisted < persisted)
        {
            await Task.Delay(10, cancellationToken);
        }
    }

    /// <summary>A scrape that counts <paramref name="received"/> readings: the exporter answers from a cache for a moment.</summary>
    private static async Task<string> ScrapeAsync(HttpClient http, Uri scrape, int received, CancellationToken cancellationToken)
    {
        while (true)
        {
            string text = await http.GetStringAsync(scrape, cancellationToken);
            if (Value(text, "telemetry_readings_received_total") >= received)
            {
                return text;
            }

            await Task.Delay(50, cancellationToken);
        }
    }

    /// <summary>Every sample (name and labels) of the metrics the exposition declares counters.</summary>
    private static Dictionary<string, double> Counters(string exposition)
    {
        string[] lines = exposition.Split('\n');
        HashSet<string> counters = lines.Where(l => l.StartsWith("# TYPE ", StringComparison.Ordinal) && l.EndsWith(" counter", StringComparison.Ordinal))
            .Select(l => l.Split(' ')[2]).ToHashSet(StringComparer.Ordinal);
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (string line in lines.Where(l => l.Length > 0 && l[0] != '#'))
        {
            int labels = line.IndexOfAny([' ', '{']);
            if (labels > 0 && counters.Contains(line[..labels]))
            {
                int end = line[labels] == '{' ? line.IndexOf("} ", labels, StringComparison.Ordinal) + 1 : labels;
                samples[line[..end]] = Value(line, line[..labels]);
            }
        }

        return samples;
    }

    private static async Task LagAsync()
    {
        const int Readings = 5;
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();
        var store = new StalledStore();
        await using TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [device.PublicKey],
            Store = store,
            MetricsPort = 0,
        });
        try
        {
            var options = new OssuaryClientOptions { Identity = device };
            options.TrustedServerKeys.Add(serverKey.PublicKey);
            await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options, budget.Token))
            {
                for (int seq = 1; seq <= Readings; seq++)
                {
                    await connection.Transport.Output.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"sensor=temp value={seq} seq={seq}\n"), budget.Token);
                }
            }

            // Every reading received and taken off the queue by the writer, whose store has not answered.
            while (server.Registry.SessionsEnded < 1 || server.Queue.Count > 0 || !store.Writing)
            {
                await Task.Delay(10, budget.Token);
            }

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            string text = await http.GetStringAsync(new Uri($"http://{server.MetricsEndPoint}/metrics"), budget.Token);
            Assert.Equal(Readings, Value(text, "telemetry_readings_received_total"));
            Assert.Equal(0, Value(text, "telemetry_readings_stored_total"));
            Assert.Equal(Readings, Value(text, "telemetry_store_lag"));
        }
        finally
        {
            store.Open();
        }
    }

    private async Task ScrapeAsync()
    {
        const int Devices = 3;
        const int Readings = 10;
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var stranger = OssuaryIdentity.Generate();
        OssuaryIdentity[] devices = Enumerable.Range(0, Devices).Select(_ => OssuaryIdentity.Generate()).ToArray();
        try
        {
            await using TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
            {
                Identity = serverKey,
                AuthorizedDevices = devices.Select(d => d.PublicKey).ToList(),
                DatabasePath = Path.Combine(_directory, "telemetry.db"),
                MetricsPort = 0,
            });
            Assert.NotNull(server.MetricsEndPoint);
            Assert.NotEqual(server.EndPoint.Port, server.MetricsEndPoint.Port);

            LoadResult result = await LoadGenerator.RunAsync(new LoadOptions
            {
                Server = server.EndPoint,
                ServerKey = serverKey.PublicKey,
                Devices = devices,
                ReadingsPerDevice = Readings,
                Interval = TimeSpan.Zero,
            }, cancellationToken: budget.Token);
            Assert.All(result.Devices, run => Assert.Null(run.Error));
            var refused = new OssuaryClientOptions { Identity = stranger };
            refused.TrustedServerKeys.Add(serverKey.PublicKey);
            await Assert.ThrowsAnyAsync<Exception>(async () =>
            {
                await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, refused, budget.Token);
                await connection.Transport.Input.ReadAsync(budget.Token);
                throw new InvalidOperationException("not refused");
            });
            // A line that is not a reading: the README's telemetry_readings_rejected_total counts it.
            var device = new OssuaryClientOptions { Identity = devices[0] };
            device.TrustedServerKeys.Add(serverKey.PublicKey);
            await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, device, budget.Token))
            {
                await connection.Transport.Output.WriteAsync("not a reading\n"u8.ToArray(), budget.Token);
            }

            while (server.Registry.SessionsEnded < Devices + 1 || server.Writer.Persisted < Devices * Readings)
            {
                await Task.Delay(10, budget.Token);
            }

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            string text = await http.GetStringAsync(new Uri($"http://{server.MetricsEndPoint}/metrics"), budget.Token);
            Assert.Equal(Devices * Readings, Value(text, "telemetry_readings_received_total"));
            Assert.Equal(Devices * Readings, Value(text, "telemetry_readings_stored_total"));
            Assert.Equal(0, Value(text, "telemetry_devices_connected"));
            Assert.Equal(0, Value(text, "telemetry_store_lag"));
            Assert.Equal(1, Value(text, "telemetry_handshakes_refused_total"));
            Assert.Equal(1, Value(text, "telemetry_readings_rejected_total"));

            // The library's meter: the handshakes, by outcome, and the bytes.
            Assert.Contains("ossuary_handshake_duration_seconds_count", text, StringComparison.Ordinal);
            Assert.Contains("ossuary_outcome=\"failure\"", text, StringComparison.Ordinal);
            Assert.True(Value(text, "ossuary_bytes_received_bytes_total") > 0, text);
        }
        finally
        {
            foreach (OssuaryIdentity device in devices)
            {
                device.Dispose();
            }
        }
    }

    /// <summary>A store that holds every batch until <see cref="Open"/>.</summary>
    private sealed class StalledStore : Ossuary.Samples.Telemetry.Storage.IReadingStore
    {
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile bool _writing;

        public bool Writing => _writing;

        public void Open() => _open.TrySetResult();

        public async ValueTask<int> WriteAsync(IReadOnlyList<Ossuary.Samples.Telemetry.Storage.StoredReading> batch, CancellationToken cancellationToken)
        {
            _writing = true;
            await _open.Task.WaitAsync(cancellationToken);
            return batch.Count;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>The value of the first sample of <paramref name="metric"/> (labels ignored).</summary>
    private static double Value(string exposition, string metric)
    {
        string? line = exposition.Split('\n').FirstOrDefault(l => l.StartsWith(metric + " ", StringComparison.Ordinal) || l.StartsWith(metric + "{", StringComparison.Ordinal));
        Assert.True(line is not null, $"no {metric} in:\n{exposition}");
        string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);

        // "name{labels} value [timestamp]": the value is the token after the labels.
        int valueIndex = parts.Length >= 3 && long.TryParse(parts[^1], NumberStyles.Integer, CultureInfo.InvariantCulture, out _) && parts.Length > 2 ? parts.Length - 2 : parts.Length - 1;
        return double.Parse(parts[valueIndex], NumberStyles.Float, CultureInfo.InvariantCulture);
    }
}
