using System.Diagnostics;

namespace Ossuary.Pipelines.Loopback.Measurements;

/// <summary>Wall time, process CPU time and bytes allocated (all threads) over one measurement.</summary>
internal readonly struct CpuClock
{
    private readonly long _started;
    private readonly TimeSpan _cpu;
    private readonly long _allocated;

    private CpuClock(long started, TimeSpan cpu, long allocated)
    {
        _started = started;
        _cpu = cpu;
        _allocated = allocated;
    }

    public static CpuClock Start() => new(Stopwatch.GetTimestamp(), ProcessCpu(), GC.GetTotalAllocatedBytes(precise: true));

    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_started);

    /// <summary>Cores busy on average since the start (the process's CPU time over wall time).</summary>
    public double CoresBusy => (ProcessCpu() - _cpu) / Elapsed;

    public long Allocated => GC.GetTotalAllocatedBytes(precise: true) - _allocated;

    private static TimeSpan ProcessCpu()
    {
        using Process process = Process.GetCurrentProcess();
        return process.TotalProcessorTime;
    }
}
