using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// strace attached to the calling thread of this very process (<c>-y</c>), for a library call that can
/// only be checked by the system calls it makes (a sync of a folder). Started, it has attached to the
/// calling thread; disposed, it has detached (SIGINT) and written its log. Linux only.
/// </summary>
/// <remarks>
/// Only that thread is traced, so the call checked must run synchronously on it. Tracing the whole
/// test host (<c>-f</c>, as this did first) also traced every process the tests running beside it
/// started, and their children, for as long as the trace lasted: a clean-clone CI run hung for good
/// with one of them held in a tracing stop, and the suite is safer for never tracing what it did not start.
/// </remarks>
internal sealed partial class SelfTrace : IDisposable
{
    // Yama (ptrace_scope 1) lets a process trace only its descendants: strace, a child, is let in by name.
    private const int SetPtracer = 0x59616d61; // PR_SET_PTRACER
    private const nint AnyPtracer = -1; // PR_SET_PTRACER_ANY

    private readonly Process _strace;

    private SelfTrace(Process strace) => _strace = strace;

    /// <summary>Traces <paramref name="syscalls"/> (strace's <c>-e trace=</c>) of this process into <paramref name="log"/>.</summary>
    public static SelfTrace Start(string strace, string syscalls, string log)
    {
        var start = new ProcessStartInfo(strace) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string argument in new[] { "-y", "-qq", "-e", $"trace={syscalls}", "-o", log, "-p", CallingThreadId() })
        {
            start.ArgumentList.Add(argument);
        }

        _ = Prctl(SetPtracer, AnyPtracer, 0, 0, 0); // fails (EINVAL) where there is no Yama, which then needs nothing
        var trace = new SelfTrace(Process.Start(start)!);

        // Attached once the kernel names a tracer for the thread that is to make the calls.
        var waited = Stopwatch.StartNew();
        while (!File.ReadAllLines("/proc/thread-self/status").Any(line => line.StartsWith("TracerPid:", StringComparison.Ordinal) && line.Split('\t', 2)[1].Trim() != "0"))
        {
            if (trace._strace.HasExited || waited.Elapsed > TimeSpan.FromMinutes(1))
            {
                string error = trace._strace.HasExited ? trace._strace.StandardError.ReadToEnd() : "still not attached after a minute";
                trace.Dispose();
                throw new InvalidOperationException($"strace did not attach to this process: {error}");
            }

            Thread.Sleep(10);
        }

        return trace;
    }

    /// <summary>The kernel's id of the calling thread: <c>/proc/thread-self</c> links to "pid/task/tid".</summary>
    private static string CallingThreadId() =>
        Path.GetFileName(new DirectoryInfo("/proc/thread-self").LinkTarget
            ?? throw new InvalidOperationException("/proc/thread-self is not a link: this kernel does not name its threads there"));

    /// <summary>
    /// The calls <paramref name="log"/> holds, one line each, in the order they were made. With one thread
    /// traced no call overtakes another, so strace writes each whole on its line (with <c>-f</c> it split a
    /// call another thread overtook into "unfinished" and "resumed" halves).
    /// </summary>
    public static IReadOnlyList<string> ReadCalls(string log) => File.ReadAllLines(log);

    public void Dispose()
    {
        if (!_strace.HasExited)
        {
            // SIGINT: strace detaches from every thread and flushes its log (SIGKILL would leave neither done).
            // Sent with kill(2), not by starting kill(1): when this traced the whole process (-f), one
            // clean-clone CI run hung for good with that kill(1) held in its tracing stop, SIGINT never sent.
            _ = Kill(_strace.Id, Interrupt);
            if (!_strace.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                _strace.Kill(); // the kernel detaches a dead tracer's tracees: the test then fails on its log, not hangs
                _strace.WaitForExit();
            }
        }

        _strace.Dispose();
        _ = Prctl(SetPtracer, 0, 0, 0, 0);
    }

    private const int Interrupt = 2; // SIGINT

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [DllImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static extern int Prctl(int option, nint arg2, nint arg3, nint arg4, nint arg5);
}
