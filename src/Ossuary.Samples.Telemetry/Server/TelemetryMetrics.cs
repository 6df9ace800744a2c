using System.Diagnostics.Metrics;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>
/// The meter <c>Ossuary.Samples.Telemetry</c>, read when scraped: readings received and stored
/// (Prometheus derives readings/s with <c>rate()</c>), devices connected, the store's lag (readings
/// received, not yet stored), sequence numbers missing and refused handshakes. Observable instruments: recording costs nothing per reading, and a scrape adds the devices' figures up (<see cref="TelemetryRegistry.Totals"/>) without copying them.
/// </summary>
public sealed class TelemetryMetrics
{
    /// <summary>The meter's name, for <c>AddMeter</c>.</summary>
    public const string MeterName = "Ossuary.Samples.Telemetry";

    /// <summary>Creates the instruments on a meter from <paramref name="meters"/>.</summary>
    public TelemetryMetrics(IMeterFactory meters, TelemetryRegistry registry, ReadingQueue queue, StoreWriter writer)
    {
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(writer);
        Meter meter = meters.Create(MeterName);
        meter.CreateObservableCounter("telemetry.readings.received", () => registry.Totals().Readings, unit: "{reading}", description: "Readings parsed from devices.");
        meter.CreateObservableCounter("telemetry.readings.stored", () => writer.Persisted, unit: "{reading}", description: "Readings the store (or JetStream) has accepted, resends it had already included.");
        meter.CreateObservableCounter("telemetry.readings.reused", () => writer.Reused, unit: "{reading}", description: "Readings stored under a sequence number their device had used for another reading (it restarted its numbering): kept, without the number.");
        meter.CreateObservableCounter("telemetry.readings.rejected", () => registry.Totals().Rejected, unit: "{line}", description: "Lines that were not readings.");
        // Not a counter: a reading that arrives late (a reconnected device's resend) fills its gap, so
        // the figure falls, and Prometheus takes any fall of a counter for a restart (rate() and
        // increase() then add the whole value: a loss alert fired for a reading that arrived).
        // In double (FleetTotals.Gaps): two devices that jumped to near long.MaxValue overflow a long
        // sum, which threw in the callback and dropped the figure from every scrape.
        meter.CreateObservableUpDownCounter("telemetry.readings.gaps", () => registry.Totals().Gaps, unit: "{reading}", description: "Sequence numbers missing now: readings devices numbered and the server has not received (a late one fills its gap).");
        meter.CreateObservableUpDownCounter("telemetry.devices.connected", () => registry.Totals().Connected, unit: "{device}", description: "Devices with a connection open.");
        // The batch the store is writing counts too: a stalled store (a JetStream outage) holds up to a
        // whole batch with the queue empty, and the lag must not read 0 then.
        meter.CreateObservableUpDownCounter("telemetry.store.lag", () => queue.Count + writer.Writing, unit: "{reading}", description: "Readings received and not yet stored: queued, or in the batch being written.");
        meter.CreateObservableCounter("telemetry.handshakes.refused", () => registry.Refused().Sum(r => r.Count) + registry.RefusedUnlisted, unit: "{handshake}", description: "Handshakes refused: the device's key is not on the allow-list.");
    }
}
