using System.Diagnostics.Metrics;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>
/// The meter <c>Ossuary.Samples.Telemetry</c>, read when scraped: readings received and stored
/// (Prometheus derives readings/s with <c>rate()</c>), devices connected, the store's lag (readings
/// queued, not yet stored) and refused handshakes. Observable instruments: recording costs nothing per reading.
/// </summary>
public sealed class TelemetryMetrics
{
    /// <summary>The meter's name, for <c>AddMeter</c>.</summary>
    public const string MeterName = "Ossuary.Samples.Telemetry";

    /// <summary>Creates the instruments on a meter from <paramref name="meters"/>.</summary>
    public TelemetryMetrics(IMeterFactory meters, TelemetryRegistry registry, ReadingQueue queue, Func<long> persisted)
    {
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(persisted);
        Meter meter = meters.Create(MeterName);
        meter.CreateObservableCounter("telemetry.readings.received", () => registry.Snapshot().Sum(d => d.Readings), unit: "{reading}", description: "Readings parsed from devices.");
        meter.CreateObservableCounter("telemetry.readings.stored", persisted, unit: "{reading}", description: "Readings the store (or JetStream) has accepted.");
        meter.CreateObservableCounter("telemetry.readings.rejected", () => registry.Snapshot().Sum(d => d.Rejected), unit: "{line}", description: "Lines that were not readings.");
        // In double: a device's sequence numbers are its own, and two that jumped to near long.MaxValue
        // overflow a long sum, which throws in the callback and drops the counter from every scrape.
        meter.CreateObservableCounter("telemetry.readings.gaps", () => registry.Snapshot().Sum(d => (double)d.Gaps), unit: "{reading}", description: "Sequence numbers skipped: readings devices numbered but never delivered.");
        meter.CreateObservableUpDownCounter("telemetry.devices.connected", () => registry.Snapshot().Count(d => d.Connections > 0), unit: "{device}", description: "Devices with a connection open.");
        meter.CreateObservableUpDownCounter("telemetry.store.lag", () => (long)queue.Count, unit: "{reading}", description: "Readings received and queued, not yet stored.");
        meter.CreateObservableCounter("telemetry.handshakes.refused", () => registry.Refused().Sum(r => r.Count) + registry.RefusedUnlisted, unit: "{handshake}", description: "Handshakes refused: the device's key is not on the allow-list.");
    }
}
