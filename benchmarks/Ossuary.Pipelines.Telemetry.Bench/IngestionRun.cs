using System.Diagnostics;
using System.Net;
using Ossuary.Samples.Telemetry.Server;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Telemetry.Bench;

/// <summary>
/// The sample's server (Kestrel + UseOssuary, every device on the allow-list, SQLite store) and N
/// devices in this one process: connect all, measure idle memory, send as fast as they can for S
/// seconds, drop and reconnect all at once (the storm), then count what the store holds against what
/// each device sent.
/// </summary>
internal static class IngestionRun
{
    public static async Task RunAsync(BenchSettings settings, Report report)
    {
        string directory = Directory.CreateTempSubdirectory("ossuary-telemetry-bench-").FullName;
        string database = Path.Combine(directory, "telemetry.db");
        using var serverKey = OssuaryIdentity.Generate();
        var identities = Enumerable.Range(0, settings.Devices).Select(_ => OssuaryIdentity.Generate()).ToList();
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Address = IPAddress.Loopback,
            Identity = serverKey,
            AuthorizedDevices = identities.Select(i => i.PublicKey).ToList(),
            DatabasePath = database,
        });
        var devices = identities.Select(i => new BenchDevice(i, server.EndPoint, serverKey.PublicKey)).ToList();
        using var budget = new CancellationTokenSource(TimeSpan.FromMinutes(settings.Quick ? 8 : 30));
        try
        {
            long workingSetBefore = WorkingSet();
            Console.WriteLine($"connecting {settings.Devices} devices...");
            long start = Stopwatch.GetTimestamp();
            await ForAllAsync(devices, 256, d => d.ConnectAsync(budget.Token));
            await WaitAsync(() => Connected(server) >= settings.Devices, budget.Token);
            Console.WriteLine($"  connected in {Stopwatch.GetElapsedTime(start).TotalSeconds:F1} s");
            report.Add("telemetry.devices.connected", Connected(server), "devices");
            long workingSetIdle = WorkingSet();
            report.Add("telemetry.server.workingset_per_device_bytes", (workingSetIdle - workingSetBefore) / (double)settings.Devices, "bytes");

            // Ingest: every device sends batches back to back until the time is up, but the fleet keeps at
            // most InFlight readings ahead of what the server has parsed. Without that window the kernel's
            // loopback TCP buffers (MBs per connection) absorb seconds of sending, the devices look
            // faster than the server, and draining them takes minutes. Rates are the server's own counts
            // over the window; everything sent is then drained and counted for loss.
            Console.WriteLine($"ingesting for {settings.Seconds} s...");
            long inFlight = Math.Max(100_000, 4L * settings.Devices * settings.ReadingsPerFlush);
            long sentTotal = devices.Sum(d => d.Sent);
            long ingestedSeen = Ingested(server);
            using var sampling = new CancellationTokenSource();
            Task sampler = Task.Run(async () =>
            {
                while (!sampling.IsCancellationRequested)
                {
                    Volatile.Write(ref ingestedSeen, Ingested(server));
                    await Task.Delay(20, CancellationToken.None);
                }
            });
            long ingestedBefore = Ingested(server);
            long persistedBefore = server.Writer.Persisted;
            long sentBefore = sentTotal;
            TimeSpan cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            start = Stopwatch.GetTimestamp();
            var stop = DateTime.UtcNow.AddSeconds(settings.Seconds);
            await ForAllAsync(devices, devices.Count, async d =>
            {
                while (DateTime.UtcNow < stop)
                {
                    if (Interlocked.Read(ref sentTotal) - Volatile.Read(ref ingestedSeen) > inFlight)
                    {
                        await Task.Delay(5);
                        continue;
                    }

                    await d.SendAsync(settings.ReadingsPerFlush);
                    Interlocked.Add(ref sentTotal, settings.ReadingsPerFlush);
                }
            });
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            long ingested = Ingested(server) - ingestedBefore;
            long persisted = server.Writer.Persisted - persistedBefore;
            double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
            await sampling.CancelAsync();
            await sampler;
            long sent = devices.Sum(d => d.Sent) - sentBefore;
            report.Add("telemetry.readings.sent_per_second", sent / seconds, "readings/s");
            report.Add("telemetry.readings.ingested_per_second", ingested / seconds, "readings/s");
            report.Add("telemetry.readings.persisted_per_second", persisted / seconds, "readings/s");
            report.Add("telemetry.cpu_seconds_per_million_readings", ingested > 0 ? cpu / ingested * 1e6 : double.NaN, "CPU s");
            start = Stopwatch.GetTimestamp();
            await WaitAsync(() => Ingested(server) - ingestedBefore >= sent && server.Writer.Persisted - persistedBefore >= sent, budget.Token);
            report.Add("telemetry.readings.drain_seconds", Stopwatch.GetElapsedTime(start).TotalSeconds, "s");

            // The storm: every device drops its connection at once and reconnects at once; done when
            // every device is connected again and the server has parsed one new reading from each.
            Console.WriteLine("reconnect storm...");
            long beforeStorm = Ingested(server);
            start = Stopwatch.GetTimestamp();
            await ForAllAsync(devices, devices.Count, d => d.DisconnectAsync().AsTask());
            await ForAllAsync(devices, devices.Count, async d =>
            {
                await d.ConnectAsync(budget.Token);
                await d.SendAsync(1);
            });
            await WaitAsync(() => Connected(server) >= settings.Devices && Ingested(server) >= beforeStorm + settings.Devices, budget.Token);
            report.Add("telemetry.reconnect_storm.seconds", Stopwatch.GetElapsedTime(start).TotalSeconds, "s");
            report.Add("telemetry.reconnect_storm.connect_retries", devices.Sum(d => d.ConnectFailures), "retries");
        }
        finally
        {
            await ForAllAsync(devices, devices.Count, d => d.DisposeAsync().AsTask());
            await server.DisposeAsync();
        }

        // Lost: what each device sent (its last sequence number) that the store does not hold.
        Dictionary<string, DeviceTotals> totals = ReadingQueries.Totals(database).ToDictionary(t => t.Device, StringComparer.Ordinal);
        long lost = devices.Sum(d => d.Sent - (totals.TryGetValue(d.KeyHex, out DeviceTotals? t) ? t.Readings : 0));
        report.Add("telemetry.readings.lost", lost, "readings");
        report.Add("telemetry.readings.sent", devices.Sum(d => d.Sent), "readings");
        Directory.Delete(directory, recursive: true);
    }

    private static int Connected(TelemetryServer server) => server.Registry.Snapshot().Count(d => d.Connections > 0);

    private static long Ingested(TelemetryServer server) => server.Registry.Snapshot().Sum(d => d.Readings);

    private static long WorkingSet()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64;
    }

    private static async Task WaitAsync(Func<bool> done, CancellationToken cancellationToken)
    {
        while (!done())
        {
            await Task.Delay(20, cancellationToken);
        }
    }

    private static async Task ForAllAsync<T>(IReadOnlyList<T> items, int parallel, Func<T, Task> action)
    {
        using var gate = new SemaphoreSlim(parallel);
        await Task.WhenAll(items.Select(async item =>
        {
            await gate.WaitAsync();
            try
            {
                await Task.Run(() => action(item));
            }
            finally
            {
                gate.Release();
            }
        }));
    }
}
