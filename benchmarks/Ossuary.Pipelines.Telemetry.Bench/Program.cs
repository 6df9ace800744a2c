using System.Globalization;
using Ossuary.Pipelines.Telemetry.Bench;

// dotnet run -c Release --project benchmarks/Ossuary.Pipelines.Telemetry.Bench -- [--quick] [--devices N] [--seconds S] [--json FILE] [--store]
// (--generator N is the child process the bench starts for its devices; not for use by hand.)
if (args is ["--generator", string count])
{
    return await GeneratorMode.RunAsync(int.Parse(count, CultureInfo.InvariantCulture));
}

BenchSettings settings;
try
{
    settings = BenchSettings.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

var report = new Report(settings.Quick);
Console.WriteLine($"load average at start: {report.LoadAtStart}");
if (settings.StoreOnly)
{
    Console.WriteLine($"store comparison, {settings.StoreReadings} readings in batches of 4096:");
    await StoreComparison.RunAsync(settings.StoreReadings, report);
}
else
{
    Console.WriteLine($"telemetry ingestion: {settings.Devices} devices, {settings.Seconds} s, {settings.ReadingsPerFlush} readings per flush");
    try
    {
        await IngestionRun.RunAsync(settings, report);
    }
    catch (Exception ex) when (ex is InvalidOperationException or IOException or TimeoutException)
    {
        // Never a report that looks like a success: the figures so far are shown, the run fails.
        Console.Error.WriteLine($"error: the ingestion run failed: {ex.Message}");
        if (ex.InnerException is { } inner)
        {
            Console.Error.WriteLine($"  because: {inner.Message}");
        }
        return 1;
    }

    AddTargets(report, settings);
}

report.LoadAtEnd = new Report(settings.Quick).LoadAtStart;
report.WriteTargets(Console.Out);
if (settings.JsonPath is not null)
{
    report.WriteJson(settings.JsonPath);
    Console.WriteLine($"wrote {settings.JsonPath}");
}

return 0;

static void AddTargets(Report report, BenchSettings settings)
{
    // Targets at a smaller scale than asked are not met or missed: they are shown with "?".
    bool full = settings.Devices >= 10_000;
    string F(string name) => report[name].ToString("0.##", CultureInfo.InvariantCulture);
    report.Target("10,000 devices connected at once", F("telemetry.devices.connected"), report["telemetry.devices.connected"] >= 10_000);
    report.Target(">= 1,000,000 readings/s ingested", F("telemetry.readings.ingested_per_second"), report["telemetry.readings.ingested_per_second"] >= 1e6);
    report.Target(">= 1,000,000 readings/s persisted", F("telemetry.readings.persisted_per_second"), report["telemetry.readings.persisted_per_second"] >= 1e6);
    report.Target("0 readings lost", F("telemetry.readings.lost"), report["telemetry.readings.lost"] == 0);
    report.Target($"reconnect storm of 10,000 devices <= 5 s (this run: {settings.Devices})", F("telemetry.reconnect_storm.seconds") + " s", full ? report["telemetry.reconnect_storm.seconds"] <= 5 : null);
    report.Target("<= 16 KB server working set per idle device", F("telemetry.server.workingset_per_device_bytes") + " B", report["telemetry.server.workingset_per_device_bytes"] <= 16 * 1024);
}
