using System.Diagnostics;

namespace Ossuary.Samples.Telemetry.Load;

/// <summary>Simulates a fleet: every device connects at once and sends its readings concurrently.</summary>
public static class LoadGenerator
{
    /// <summary>Runs every device to completion (or failure) and reports how each fared; never throws for one device's failure.</summary>
    public static async Task<LoadResult> RunAsync(LoadOptions options, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(options.ReadingsPerDevice);
        time ??= TimeProvider.System;
        long start = Stopwatch.GetTimestamp();
        DeviceRun[] runs = await Task.WhenAll(options.Devices.Select((identity, index) =>
            Task.Run(() => SimulatedDevice.RunAsync(index, identity, options, time, cancellationToken), CancellationToken.None)));
        return new LoadResult(runs, Stopwatch.GetElapsedTime(start));
    }
}
