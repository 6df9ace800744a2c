using System.Diagnostics;
using Ossuary.Pipelines.Loopback.Targets;

namespace Ossuary.Pipelines.Loopback.Measurements;

/// <summary>
/// Memory per idle established connection: N connections are opened (handshake, one byte each
/// way), both ends left waiting in a read, and the growth of the managed heap (after a full
/// collection) and of the process's working set is divided by N. Client and server live in this
/// process, so each figure is for a connection pair: both ends.
/// </summary>
internal static class IdleMemoryMeasurement
{
    private const int WarmUpConnections = 64;
    private const int OpenAtOnce = 8;
    private static readonly TimeSpan ServerEndsLimit = TimeSpan.FromSeconds(30);

    public sealed record Result(double ManagedPerPair, double WorkingSetPerPair);

    public static async Task<Result> RunAsync(BenchTarget target, int count, CancellationToken cancellationToken)
    {
        // Code, pools and caches that any first connections fill are not per-connection costs. In
        // later rounds this also lets what the previous target left behind settle: skipped, the
        // figures came out a few KB a pair low, some below zero.
        await CloseAllAsync(await OpenIdleAsync(target, WarmUpConnections, cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);
        await WaitForServerEndsAsync(target, cancellationToken).ConfigureAwait(false);

        (long managedBefore, long workingSetBefore) = Snapshot();

        List<IBenchClient> clients = await OpenIdleAsync(target, count, cancellationToken).ConfigureAwait(false);
        try
        {
            // Let every server end reach its idle read after answering the ping.
            await Task.Delay(150, cancellationToken).ConfigureAwait(false);
            (long managedAfter, long workingSetAfter) = Snapshot();
            target.ThrowIfServerFailed();
            return new Result((double)(managedAfter - managedBefore) / count, (double)(workingSetAfter - workingSetBefore) / count);
        }
        finally
        {
            await CloseAllAsync(clients).ConfigureAwait(false);

            // The next target's snapshots must not see these server ends go (1,000 Kestrel
            // connections take longer than a fixed pause to tear down: the next figure came out
            // several KB a pair low or high, depending on the order of the targets).
            await WaitForServerEndsAsync(target, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Waits until every server end of <paramref name="target"/> has finished, then a little for the transport's own teardown.</summary>
    private static async Task WaitForServerEndsAsync(BenchTarget target, CancellationToken cancellationToken)
    {
        var waited = Stopwatch.StartNew();
        while (target.OpenServerConnections > 0)
        {
            if (waited.Elapsed > ServerEndsLimit)
            {
                throw new InvalidOperationException($"{target.OpenServerConnections} server ends of {target.Name} were still open {ServerEndsLimit.TotalSeconds:0} s after their clients closed.");
            }

            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }

        await Task.Delay(50, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<List<IBenchClient>> OpenIdleAsync(BenchTarget target, int count, CancellationToken cancellationToken)
    {
        var clients = new List<IBenchClient>(count);
        try
        {
            while (clients.Count < count)
            {
                var batch = new Task<IBenchClient>[Math.Min(OpenAtOnce, count - clients.Count)];
                for (int i = 0; i < batch.Length; i++)
                {
                    batch[i] = OpenOneAsync(target, cancellationToken);
                }

                clients.AddRange(await Task.WhenAll(batch).ConfigureAwait(false));
            }

            return clients;
        }
        catch
        {
            await CloseAllAsync(clients).ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<IBenchClient> OpenOneAsync(BenchTarget target, CancellationToken cancellationToken)
    {
        IBenchClient client = await target.ConnectAsync(cancellationToken).ConfigureAwait(false);
        await client.PingAsync(cancellationToken).ConfigureAwait(false);
        client.StartIdleRead();
        return client;
    }

    private static async Task CloseAllAsync(List<IBenchClient> clients)
    {
        for (int i = 0; i < clients.Count; i += OpenAtOnce)
        {
            await Task.WhenAll(clients.Skip(i).Take(OpenAtOnce).Select(c => c.DisposeAsync().AsTask())).ConfigureAwait(false);
        }
    }

    private static (long Managed, long WorkingSet) Snapshot()
    {
        // Aggressive: free memory is decommitted, so the working set counts the pages live objects
        // use, not what earlier measurements left committed (which later ones would reuse unseen).
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        long managed = GC.GetTotalMemory(forceFullCollection: false);
        using Process process = Process.GetCurrentProcess();
        return (managed, process.WorkingSet64);
    }
}
