using Ossuary.Pipelines;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>Prints <see cref="SummaryTable"/> every period until cancelled, and on demand.</summary>
public sealed class SummaryReporter(TelemetryRegistry registry, TextWriter output, int? maxRows = null, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private long _lastTotal;
    private long _lastTimestamp;

    /// <summary>Reports every <paramref name="period"/> until <paramref name="cancellationToken"/> fires.</summary>
    public async Task RunAsync(TimeSpan period, CancellationToken cancellationToken)
    {
        _lastTimestamp = _time.GetTimestamp();
        using var timer = new PeriodicTimer(period, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                Report();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Prints the table now.</summary>
    public void Report()
    {
        IReadOnlyList<DeviceSnapshot> devices = registry.Snapshot();
        long total = devices.Sum(device => device.Readings);
        long now = _time.GetTimestamp();
        double seconds = _time.GetElapsedTime(_lastTimestamp, now).TotalSeconds;
        double throughput = seconds > 0 ? (total - _lastTotal) / seconds : 0;
        _lastTotal = total;
        _lastTimestamp = now;
        output.WriteLine(SummaryTable.Format(devices, throughput, maxRows));
        IReadOnlyList<(OssuaryPublicKey Key, long Count)> refused = registry.Refused();
        if (refused.Count > 0)
        {
            output.WriteLine($"refused {refused.Sum(r => r.Count)} handshake(s) from {refused.Count} key(s) not in the authorized keys:");
            foreach ((OssuaryPublicKey key, long count) in refused)
            {
                output.WriteLine($"  {key}  {count} time(s)");
            }
        }

        if (registry.RefusedUnlisted > 0)
        {
            output.WriteLine($"refused {registry.RefusedUnlisted} more handshake(s) from keys not listed (past the first {TelemetryRegistry.MaxRefusedKeys})");
        }

        output.Flush();
    }
}
