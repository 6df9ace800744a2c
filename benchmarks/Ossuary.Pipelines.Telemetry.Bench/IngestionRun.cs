using System.Diagnostics;
using System.Globalization;
using System.Net;
using Ossuary.Samples.Telemetry.Server;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Telemetry.Bench;

/// <summary>
/// The sample's server (Kestrel + UseOssuary, every device on the allow-list, SQLite store) in this
/// process and N devices in a generator process (<see cref="GeneratorProcess"/>): connect all, measure
/// the server's idle memory, send as fast as the server takes for S seconds, drop and reconnect all at
/// once (the storm), then count what the store holds against what each device sent.
/// </summary>
internal static class IngestionRun
{
    /// <exception cref="InvalidOperationException">The generator died or answered out of turn.</exception>
    /// <exception cref="TimeoutException">The run took longer than its budget (8 minutes with --quick, else 30).</exception>
    public static async Task RunAsync(BenchSettings settings, Report report)
    {
        TimeSpan limit = TimeSpan.FromMinutes(settings.Quick ? 8 : 30);
        using var budget = new CancellationTokenSource(limit);
        await using GeneratorProcess generator = GeneratorProcess.Start(settings.Devices);
        using var run = CancellationTokenSource.CreateLinkedTokenSource(budget.Token, generator.Died);
        try
        {
            await RunAsync(settings, report, generator, run.Token);
        }
        catch (OperationCanceledException) when (generator.Died.IsCancellationRequested)
        {
            throw await generator.FailureAsync();
        }
        catch (OperationCanceledException) when (budget.IsCancellationRequested)
        {
            throw new TimeoutException($"the run took longer than its budget of {limit.TotalMinutes} minutes");
        }
    }

    private static async Task RunAsync(BenchSettings settings, Report report, GeneratorProcess generator, CancellationToken cancellationToken)
    {
        string directory = Directory.CreateTempSubdirectory("ossuary-telemetry-bench-").FullName;
        string database = Path.Combine(directory, "telemetry.db");
        Console.WriteLine($"generator process {generator.Id}: making {settings.Devices} device keys...");
        var devices = new List<OssuaryPublicKey>(settings.Devices);
        while (true)
        {
            string[] line = await generator.ReadAsync(devices.Count == settings.Devices ? GeneratorProtocol.KeysDone : GeneratorProtocol.Key, cancellationToken);
            if (line[0] == GeneratorProtocol.KeysDone)
            {
                break;
            }

            devices.Add(OssuaryPublicKey.Parse(line[1]));
        }

        using var serverKey = OssuaryIdentity.Generate();
        CountingStore? counting = settings.NoStore ? new CountingStore() : null;
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Address = IPAddress.Loopback,
            Identity = serverKey,
            AuthorizedDevices = devices,
            DatabasePath = database,
            Store = counting,

            // The bench measures connections, not the limit: room for every device and a reconnect storm's overlap.
            MaxConnections = Math.Max(TelemetryServerOptions.DefaultMaxConnections, 2 * settings.Devices),
        });
        Dictionary<string, long> sentByDevice;
        try
        {
            await generator.WriteAsync($"{GeneratorProtocol.Server} {server.EndPoint} {serverKey.PublicKey}");

            // The per-device figures are growth over N connections; a warm-up group that connects and
            // leaves first keeps one-time costs (JIT, thread-pool threads, pools) out of them.
            int warmUp = Math.Min(256, settings.Devices);
            await generator.WriteAsync(string.Create(CultureInfo.InvariantCulture, $"{GeneratorProtocol.WarmUp} {warmUp}"));
            await generator.ReadAsync(GeneratorProtocol.WarmedUp, cancellationToken);
            await WaitAsync(() => server.Registry.SessionsEnded >= warmUp, cancellationToken);
            (long workingSetBefore, long managedBefore) = Memory();
            Console.WriteLine($"connecting {settings.Devices} devices...");
            long start = Stopwatch.GetTimestamp();
            await generator.WriteAsync(GeneratorProtocol.Connect);
            string[] connected = await generator.ReadAsync(GeneratorProtocol.Connected, cancellationToken);
            await WaitAsync(() => Connected(server) >= settings.Devices, cancellationToken);
            Console.WriteLine($"  connected in {Stopwatch.GetElapsedTime(start).TotalSeconds:F1} s ({connected[1]} retries)");
            report.Add("telemetry.devices.connected", Connected(server), "devices");
            (long workingSetIdle, long managedIdle) = Memory();
            report.Add("telemetry.server.workingset_per_device_bytes", (workingSetIdle - workingSetBefore) / (double)settings.Devices, "bytes");
            report.Add("telemetry.server.managed_per_device_bytes", (managedIdle - managedBefore) / (double)settings.Devices, "bytes");
            report.Add("telemetry.generator.workingset_per_device_bytes", WorkingSetOf(generator.Id) / (double)settings.Devices, "bytes");
            await HoldAsync(settings, generator, "connected, no reading sent yet", cancellationToken);

            // Ingest: the generator keeps the fleet at most InFlight readings ahead of what the server
            // has queued, which this process tells it every 20 ms. Rates are the server's own counts over
            // the window; everything sent is then drained and counted for loss.
            Console.WriteLine($"ingesting for {settings.Seconds} s...");
            long inFlight = Math.Max(100_000, 4L * settings.Devices * settings.ReadingsPerFlush);
            long ingestedBefore = server.Queue.Enqueued;
            long persistedBefore = server.Writer.Persisted;
            TimeSpan cpuBefore = Cpu();
            start = Stopwatch.GetTimestamp();
            await generator.WriteAsync(string.Create(CultureInfo.InvariantCulture, $"{GeneratorProtocol.Send} {settings.Seconds} {settings.ReadingsPerFlush} {inFlight}"));
            Task<string[]> sending = generator.ReadAsync(GeneratorProtocol.Sent, cancellationToken);
            while (!sending.IsCompleted)
            {
                await generator.WriteAsync(string.Create(CultureInfo.InvariantCulture, $"{GeneratorProtocol.Ingested} {server.Queue.Enqueued - ingestedBefore}"));
                await Task.WhenAny(sending, Task.Delay(20, cancellationToken));
            }

            string[] sentReply = await sending;
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            long ingested = server.Queue.Enqueued - ingestedBefore;
            long persisted = server.Writer.Persisted - persistedBefore;
            double serverCpu = (Cpu() - cpuBefore).TotalSeconds;
            long sent = long.Parse(sentReply[1], CultureInfo.InvariantCulture);
            double generatorCpu = double.Parse(sentReply[2], CultureInfo.InvariantCulture);
            report.Add("telemetry.readings.sent_per_second", sent / seconds, "readings/s");
            report.Add("telemetry.readings.ingested_per_second", ingested / seconds, "readings/s");
            report.Add("telemetry.readings.persisted_per_second", persisted / seconds, "readings/s");
            report.Add("telemetry.server.cpu_seconds_per_million_readings", PerMillion(serverCpu, ingested), "CPU s");
            report.Add("telemetry.generator.cpu_seconds_per_million_readings", PerMillion(generatorCpu, sent), "CPU s");
            report.Add("telemetry.cpu_seconds_per_million_readings", PerMillion(serverCpu, ingested) + PerMillion(generatorCpu, sent), "CPU s");
            report.Add("telemetry.server.cpu_utilisation", serverCpu / seconds, "cores");
            report.Add("telemetry.generator.cpu_utilisation", generatorCpu / seconds, "cores");
            start = Stopwatch.GetTimestamp();
            await WaitAsync(() => server.Queue.Enqueued - ingestedBefore >= sent && server.Writer.Persisted - persistedBefore >= sent, cancellationToken);
            report.Add("telemetry.readings.drain_seconds", Stopwatch.GetElapsedTime(start).TotalSeconds, "s");

            // Idle again, but every connection has now carried records (ciphers made, pipes used).
            (_, long managedAfterSend) = Memory();
            report.Add("telemetry.server.managed_per_device_after_send_bytes", (managedAfterSend - managedBefore) / (double)settings.Devices, "bytes");
            await HoldAsync(settings, generator, "idle after sending", cancellationToken);

            // The storm: every device drops its connection at once and reconnects at once; done when
            // every device is connected again and the server has queued one new reading from each.
            Console.WriteLine("reconnect storm...");
            long beforeStorm = server.Queue.Enqueued;
            cpuBefore = Cpu();
            start = Stopwatch.GetTimestamp();
            await generator.WriteAsync(GeneratorProtocol.Storm);
            string[] stormed = await generator.ReadAsync(GeneratorProtocol.Stormed, cancellationToken);
            await WaitAsync(() => Connected(server) >= settings.Devices && server.Queue.Enqueued >= beforeStorm + settings.Devices, cancellationToken);
            report.Add("telemetry.reconnect_storm.seconds", Stopwatch.GetElapsedTime(start).TotalSeconds, "s");
            report.Add("telemetry.reconnect_storm.connect_retries", int.Parse(stormed[1], CultureInfo.InvariantCulture), "retries");
            report.Add("telemetry.reconnect_storm.server_cpu_ms_per_device", (Cpu() - cpuBefore).TotalMilliseconds / settings.Devices, "CPU ms");
            report.Add("telemetry.reconnect_storm.generator_cpu_ms_per_device", double.Parse(stormed[2], CultureInfo.InvariantCulture) * 1000 / settings.Devices, "CPU ms");

            // Every device disconnects cleanly and says how many readings it sent in all.
            await generator.WriteAsync(GeneratorProtocol.Finish);
            sentByDevice = new Dictionary<string, long>(StringComparer.Ordinal);
            while (true)
            {
                string[] line = await generator.ReadAsync(sentByDevice.Count == settings.Devices ? GeneratorProtocol.Done : GeneratorProtocol.Device, cancellationToken);
                if (line[0] == GeneratorProtocol.Done)
                {
                    break;
                }

                sentByDevice.Add(line[1], long.Parse(line[2], CultureInfo.InvariantCulture));
            }

            await generator.WaitForExitAsync(cancellationToken);
        }
        finally
        {
            await server.DisposeAsync();
        }

        // Lost: what each device sent (its last sequence number) that the store does not hold.
        IReadOnlyDictionary<string, long> stored = counting?.Readings
            ?? ReadingQueries.Totals(database).ToDictionary(t => t.Device, t => t.Readings, StringComparer.Ordinal);
        long lost = sentByDevice.Sum(d => d.Value - stored.GetValueOrDefault(d.Key));
        report.Add("telemetry.readings.lost", lost, "readings");
        report.Add("telemetry.readings.sent", sentByDevice.Values.Sum(), "readings");
        Directory.Delete(directory, recursive: true);
    }

    /// <summary>With <c>--hold-idle S</c>, waits S seconds so that dotnet-gcdump or dotnet-counters can look at either process.</summary>
    private static async Task HoldAsync(BenchSettings settings, GeneratorProcess generator, string state, CancellationToken cancellationToken)
    {
        if (settings.HoldIdleSeconds > 0)
        {
            Console.WriteLine($"holding {settings.HoldIdleSeconds} s, every device {state}: server (this process) {Environment.ProcessId}, generator {generator.Id}");
            await Task.Delay(TimeSpan.FromSeconds(settings.HoldIdleSeconds), cancellationToken);
        }
    }

    private static double PerMillion(double cpuSeconds, long readings) => readings > 0 ? cpuSeconds / readings * 1e6 : double.NaN;

    // Totals, not Snapshot: polled every 50 ms, a copy and sort of 10,000 devices would count in the server's CPU.
    private static int Connected(TelemetryServer server) => server.Registry.Totals().Connected;

    private static (long WorkingSet, long Managed) Memory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long managed = GC.GetTotalMemory(forceFullCollection: true);
        using var process = Process.GetCurrentProcess();
        return (process.WorkingSet64, managed);
    }

    private static long WorkingSetOf(int processId)
    {
        using var process = Process.GetProcessById(processId);
        return process.WorkingSet64;
    }

    private static TimeSpan Cpu()
    {
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime;
    }

    private static async Task WaitAsync(Func<bool> done, CancellationToken cancellationToken)
    {
        while (!done())
        {
            await Task.Delay(50, cancellationToken);
        }
    }
}
