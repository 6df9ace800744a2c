using System.Diagnostics;
using Ossuary.Pipelines.Loopback.Targets;

namespace Ossuary.Pipelines.Loopback.Measurements;

/// <summary>
/// Bulk throughput, client to server, at one write size: the client writes N bytes in writes of
/// that size and the clock stops when the server has counted all N (its one-byte answer arrived).
/// </summary>
internal static class ThroughputMeasurement
{
    private const int WarmUpBulk = 4 * 1024 * 1024;

    /// <param name="MegabytesPerSecond">Bytes counted by the server per second, in 10^6.</param>
    /// <param name="CoresBusy">Process CPU time over wall time.</param>
    /// <param name="AllocatedPerWrite">Bytes allocated by the whole process per client write.</param>
    /// <param name="CpuMicrosecondsPerMegabyte">Process CPU time (both ends) per 10^6 bytes: the cost, whatever the machine's load.</param>
    public sealed record Result(double MegabytesPerSecond, double CoresBusy, double AllocatedPerWrite, double CpuMicrosecondsPerMegabyte);

    /// <summary>Measures every target <paramref name="roundCount"/> times, taking turns; returns every round per target.</summary>
    public static async Task<Dictionary<string, List<Result>>> RunAsync(IReadOnlyList<BenchTarget> targets, int writeSize, int roundCount, BenchSettings settings, TextWriter log, CancellationToken cancellationToken)
    {
        byte[] chunk = new byte[writeSize];
        Random.Shared.NextBytes(chunk);
        var clients = new Dictionary<string, IBenchClient>();
        var counts = new Dictionary<string, long>();
        var rounds = targets.ToDictionary(t => t.Name, _ => new List<Result>());
        try
        {
            foreach (BenchTarget target in targets)
            {
                IBenchClient client = await target.ConnectAsync(cancellationToken).ConfigureAwait(false);
                clients[target.Name] = client;
                // The 1 KiB pass runs after the 16 KiB one, whose warm-up compiled the same paths.
                double warmUp = (settings.IsQuick ? 0.3 : 0.6) * (writeSize < 16 * 1024 ? 0.5 : 1);
                double rate = await WarmUpAsync(client, chunk, warmUp, cancellationToken).ConfigureAwait(false);
                double seconds = writeSize < 16 * 1024 ? settings.SmallWriteSeconds ?? settings.ThroughputSeconds : settings.ThroughputSeconds;
                long count = (long)(rate * seconds) / writeSize * writeSize;
                counts[target.Name] = Math.Max(count, 64L * writeSize);
                target.ThrowIfServerFailed();
            }

            for (int round = 0; round < roundCount; round++)
            {
                foreach (BenchTarget target in targets)
                {
                    long count = counts[target.Name];
                    var clock = CpuClock.Start();
                    await clients[target.Name].SendBulkAsync(count, chunk, cancellationToken).ConfigureAwait(false);
                    TimeSpan elapsed = clock.Elapsed;
                    double coresBusy = clock.CoresBusy;
                    var result = new Result(count / 1e6 / elapsed.TotalSeconds, coresBusy, (double)clock.Allocated / (count / writeSize), coresBusy * elapsed.TotalMicroseconds / (count / 1e6));
                    rounds[target.Name].Add(result);
                    target.ThrowIfServerFailed();
                    log.WriteLine($"  {target.Name,-14} {writeSize / 1024,2} KiB writes: {result.MegabytesPerSecond,8:N1} MB/s  ({count / 1e6:N0} MB in {elapsed.TotalSeconds:0.00} s, {result.CoresBusy:0.00} cores busy, {result.CpuMicrosecondsPerMegabyte:N0} us CPU per MB, {result.AllocatedPerWrite:0.#} B allocated per write)");
                }
            }
        }
        finally
        {
            foreach (IBenchClient client in clients.Values)
            {
                await client.DisposeAsync().ConfigureAwait(false);
            }
        }

        return rounds;
    }

    /// <summary>Sends until tiered compilation has settled; returns the last transfer's bytes per second.</summary>
    private static async Task<double> WarmUpAsync(IBenchClient client, byte[] chunk, double seconds, CancellationToken cancellationToken)
    {
        long bulk = Math.Max(WarmUpBulk / chunk.Length, 64) * chunk.Length;
        var total = Stopwatch.StartNew();
        double rate;
        do
        {
            var one = Stopwatch.StartNew();
            await client.SendBulkAsync(bulk, chunk, cancellationToken).ConfigureAwait(false);
            rate = bulk / one.Elapsed.TotalSeconds;
        }
        while (total.Elapsed.TotalSeconds < seconds);
        return rate;
    }
}
