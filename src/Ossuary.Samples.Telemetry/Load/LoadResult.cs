using Ossuary.Pipelines;

namespace Ossuary.Samples.Telemetry.Load;

/// <summary>How one simulated device fared.</summary>
/// <param name="Key">The device's public key.</param>
/// <param name="Sent">Readings written and flushed before it disconnected.</param>
/// <param name="Error">
/// Why it stopped early, or why its readings are not known delivered; null if it sent everything, the
/// server confirmed it took all of it, and it closed cleanly.
/// </param>
public sealed record DeviceRun(OssuaryPublicKey Key, int Sent, Exception? Error);

/// <summary>How the whole simulated fleet fared.</summary>
/// <param name="Devices">One entry per device, in the order of <see cref="LoadOptions.Devices"/>.</param>
/// <param name="Elapsed">Wall time from the first connect to the last disconnect.</param>
public sealed record LoadResult(IReadOnlyList<DeviceRun> Devices, TimeSpan Elapsed)
{
    /// <summary>Devices that sent every reading, had the server confirm it took them, and closed cleanly.</summary>
    public int Succeeded => Devices.Count(device => device.Error is null);

    /// <summary>Devices that stopped early.</summary>
    public int Failed => Devices.Count - Succeeded;

    /// <summary>Readings sent, all devices together.</summary>
    public long ReadingsSent => Devices.Sum(device => (long)device.Sent);

    /// <summary>Readings per second over <see cref="Elapsed"/>.</summary>
    public double Throughput => Elapsed > TimeSpan.Zero ? ReadingsSent / Elapsed.TotalSeconds : 0;
}
