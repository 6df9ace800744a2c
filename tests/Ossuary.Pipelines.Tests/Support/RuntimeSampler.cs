using System.Diagnostics;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// Samples the test process while a load runs: the managed heap, the working set, the thread
/// pool's queue and thread count, and how long a 10 ms <see cref="Task.Delay(int)"/> really takes
/// (its continuation needs a pool thread, so a starved pool wakes it late).
/// </summary>
internal sealed class RuntimeSampler : IAsyncDisposable
{
    private static readonly TimeSpan ProbeDelay = TimeSpan.FromMilliseconds(10);

    private readonly CancellationTokenSource _stop = new();
    private readonly long _baselineManaged;
    private readonly long _baselineWorkingSet;
    private readonly Task _loop;
    private long _peakManaged;
    private long _peakWorkingSet;
    private long _peakPendingWorkItems;
    private int _peakThreads;
    private TimeSpan _slowestProbe;
    private TimeSpan _slowestProbeAt;
    private long _started;
    private int _samples;

    private RuntimeSampler()
    {
        _baselineManaged = GC.GetTotalMemory(forceFullCollection: true);
        _baselineWorkingSet = Environment.WorkingSet;
        Sample();
        _started = Stopwatch.GetTimestamp();
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>Collects garbage once for a clean baseline, then samples every probe until stopped.</summary>
    public static RuntimeSampler Start() => new();

    /// <summary>Stops sampling and returns the peaks.</summary>
    public async Task<RuntimePeaks> StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        Sample();
        return new RuntimePeaks(_baselineManaged, _peakManaged, _baselineWorkingSet, _peakWorkingSet, _peakPendingWorkItems, _peakThreads, _slowestProbe, _slowestProbeAt, _samples);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            long started = Stopwatch.GetTimestamp();
            try
            {
                await Task.Delay(ProbeDelay, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            TimeSpan took = Stopwatch.GetElapsedTime(started);
            if (took > _slowestProbe)
            {
                _slowestProbe = took;
                _slowestProbeAt = Stopwatch.GetElapsedTime(_started) - took;
            }

            Sample();
        }
    }

    private void Sample()
    {
        _samples++;
        _peakManaged = Math.Max(_peakManaged, GC.GetTotalMemory(forceFullCollection: false));
        _peakWorkingSet = Math.Max(_peakWorkingSet, Environment.WorkingSet);
        _peakPendingWorkItems = Math.Max(_peakPendingWorkItems, ThreadPool.PendingWorkItemCount);
        _peakThreads = Math.Max(_peakThreads, ThreadPool.ThreadCount);
    }
}

/// <summary>What a <see cref="RuntimeSampler"/> saw.</summary>
internal sealed record RuntimePeaks(
    long BaselineManagedBytes,
    long PeakManagedBytes,
    long BaselineWorkingSetBytes,
    long PeakWorkingSetBytes,
    long PeakPendingWorkItems,
    int PeakThreadPoolThreads,
    TimeSpan SlowestDelayProbe,
    TimeSpan SlowestDelayProbeStarted,
    int Samples)
{
    /// <summary>How far the managed heap rose above its collected baseline.</summary>
    public long ManagedGrowthBytes => PeakManagedBytes - BaselineManagedBytes;

    /// <summary>How far the working set rose above what the process held when sampling began.</summary>
    public long WorkingSetGrowthBytes => PeakWorkingSetBytes - BaselineWorkingSetBytes;

    public static double Megabytes(long bytes) => bytes / (1024.0 * 1024.0);

    public override string ToString() =>
        $"managed heap {Megabytes(BaselineManagedBytes):0.0} MB before, peak {Megabytes(PeakManagedBytes):0.0} MB; " +
        $"working set {Megabytes(BaselineWorkingSetBytes):0.0} MB before, peak {Megabytes(PeakWorkingSetBytes):0.0} MB; " +
        $"thread pool: peak {PeakPendingWorkItems} pending work items, peak {PeakThreadPoolThreads} threads; " +
        $"slowest Task.Delay(10) probe {SlowestDelayProbe.TotalMilliseconds:0.0} ms, {SlowestDelayProbeStarted.TotalSeconds:0.00} s into the run ({Samples} samples)";
}
