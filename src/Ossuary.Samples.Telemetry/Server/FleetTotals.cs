namespace Ossuary.Samples.Telemetry.Server;

/// <summary>Every device's figures added up, at one moment: what the metrics report.</summary>
/// <param name="Readings">Readings accepted, all devices together.</param>
/// <param name="Rejected">Lines that were not readings.</param>
/// <param name="Gaps">
/// Sequence numbers missing now. In double: a device's sequence numbers are its own, and two that
/// jumped to near <see cref="long.MaxValue"/> overflow a sum in a long.
/// </param>
/// <param name="Connected">Devices with a connection open.</param>
public readonly record struct FleetTotals(long Readings, long Rejected, double Gaps, int Connected);
