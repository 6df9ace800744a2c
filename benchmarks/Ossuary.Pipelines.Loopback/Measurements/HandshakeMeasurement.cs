using System.Diagnostics;
using Ossuary.Pipelines.Loopback.Targets;

namespace Ossuary.Pipelines.Loopback.Measurements;

/// <summary>
/// Connections per second, each one complete: TCP connect, handshake, one byte each way, close.
/// One loop makes them one after another; N loops make them N at a time.
/// </summary>
internal static class HandshakeMeasurement
{
    /// <param name="PerSecond">Connections completed per second.</param>
    /// <param name="CpuMicroseconds">Process CPU time per connection (client and server ends, everything in the process).</param>
    /// <param name="AllocatedBytes">Bytes allocated per connection, whole process (both ends and the harness): what the collector is handed to clear.</param>
    public sealed record Result(double PerSecond, double CpuMicroseconds, double AllocatedBytes);

    /// <summary>
    /// Makes connections without measuring them (code, pools, the server's first connections), in
    /// spells of <paramref name="seconds"/>, until a spell compiles no method (tiered compilation has
    /// settled) or <paramref name="maxSeconds"/> have passed. Under load the JIT's background tier-up
    /// lags: a perf profile of the rounds after a fixed 0.4 s warm-up still found 6% of the samples in
    /// the JIT and per-connection methods at tier 0.
    /// </summary>
    public static async Task WarmUpAsync(BenchTarget target, int parallelism, double seconds, double maxSeconds, CancellationToken cancellationToken)
    {
        var total = Stopwatch.StartNew();
        long compiled;
        do
        {
            compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
            await RunLoopsAsync(target, parallelism, seconds, cancellationToken).ConfigureAwait(false);
        }
        while (System.Runtime.JitInfo.GetCompiledMethodCount() != compiled && total.Elapsed.TotalSeconds < maxSeconds);

        target.ThrowIfServerFailed();
    }

    /// <summary>One measured round: <paramref name="parallelism"/> loops for <paramref name="seconds"/>.</summary>
    public static async Task<Result> RunAsync(BenchTarget target, int parallelism, double seconds, CancellationToken cancellationToken)
    {
        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var clock = CpuClock.Start();
        (long count, TimeSpan elapsed) = await RunLoopsAsync(target, parallelism, seconds, cancellationToken).ConfigureAwait(false);
        double cpu = clock.CoresBusy * clock.Elapsed.TotalMicroseconds / count;
        double allocated = (double)(GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) / count;
        target.ThrowIfServerFailed();
        return new Result(count / elapsed.TotalSeconds, cpu, allocated);
    }

    private static async Task<(long Count, TimeSpan Elapsed)> RunLoopsAsync(BenchTarget target, int parallelism, double seconds, CancellationToken cancellationToken)
    {
        long count = 0;
        var clock = Stopwatch.StartNew();
        var loops = new Task[parallelism];
        for (int i = 0; i < parallelism; i++)
        {
            // At least one connection a loop: under load a loop can start after the round's time is
            // up, and a round of none would be 0 connections/s and an infinite CPU per connection.
            loops[i] = Task.Run(async () =>
            {
                do
                {
                    IBenchClient client = await target.ConnectAsync(cancellationToken).ConfigureAwait(false);
                    await using (client.ConfigureAwait(false))
                    {
                        await client.PingAsync(cancellationToken).ConfigureAwait(false);
                    }

                    Interlocked.Increment(ref count);
                }
                while (clock.Elapsed.TotalSeconds < seconds);
            }, cancellationToken);
        }

        await Task.WhenAll(loops).ConfigureAwait(false);
        return (count, clock.Elapsed);
    }
}
