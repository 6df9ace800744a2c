using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Ossuary.Samples.Telemetry.Server;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>A Prometheus scrape at fleet scale: what the sample's meter costs must not grow with the devices.</summary>
public sealed class TelemetryScrapeCostTests
{
    [Fact]
    public async Task AScrapeAllocatesNothingPerDevice()
    {
        // Measured at 10,000 devices, each scrape copied and sorted every device's figures once per
        // instrument (four times) to add them up: about 10 MB of garbage and 60 ms of CPU a scrape.
        // Allocations, not time: they are exact on a loaded machine.
        (long few, long fewReadings) = await ScrapeAsync(devices: 10);
        (long many, long manyReadings) = await ScrapeAsync(devices: 2_000);

        // The figures scraped are the registry's (the listener saw the instruments it measured).
        Assert.Equal(10, fewReadings);
        Assert.Equal(2_000, manyReadings);
        Assert.True(many - few < 4 * 1024, $"a scrape allocated {few} bytes with 10 devices and {many} with 2,000");
    }

    /// <summary>The bytes one scrape of the sample's meter allocates on this thread, and the readings it reported.</summary>
    private static async Task<(long Allocated, long Readings)> ScrapeAsync(int devices)
    {
        var registry = new TelemetryRegistry();
        for (int i = 0; i < devices; i++)
        {
            var key = new byte[32];
            BitConverter.TryWriteBytes(key, i + 1);
            registry.Connect(new OssuaryPublicKey(key)).Record("temp", 21.5, 1);
        }

        await using ServiceProvider services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        IMeterFactory meters = services.GetRequiredService<IMeterFactory>();
        var queue = new ReadingQueue(16);
        var writer = new StoreWriter(queue, new NoStore(), 16, NullLogger.Instance);
        try
        {
            _ = new TelemetryMetrics(meters, registry, queue, writer);
            long readings = 0;
            using var listener = new MeterListener();
            listener.InstrumentPublished = (instrument, listening) =>
            {
                // This test's meter only: other tests' servers publish the same names in this process.
                if (instrument.Meter.Scope == meters && instrument.Meter.Name == TelemetryMetrics.MeterName)
                {
                    listening.EnableMeasurementEvents(instrument);
                }
            };
            listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
            {
                if (instrument.Name == "telemetry.readings.received")
                {
                    readings = value;
                }
            });
            listener.SetMeasurementEventCallback<int>((_, _, _, _) => { });
            listener.SetMeasurementEventCallback<double>((_, _, _, _) => { });
            listener.Start();

            listener.RecordObservableInstruments(); // first calls compile and fill caches
            long before = GC.GetAllocatedBytesForCurrentThread();
            listener.RecordObservableInstruments();
            return (GC.GetAllocatedBytesForCurrentThread() - before, readings);
        }
        finally
        {
            queue.Complete();
            await writer.Completion;
        }
    }

    private sealed class NoStore : IReadingStore
    {
        public ValueTask<int> WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken) => ValueTask.FromResult(batch.Count);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
