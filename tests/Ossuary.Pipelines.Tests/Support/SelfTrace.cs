using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// strace attached to this very process (every thread, <c>-f -y</c>), for a library call that can only
/// be checked by the system calls it makes (a sync of a folder). Started, it has attached to the calling
/// thread; disposed, it has detached (SIGINT) and written its log. Linux only.
/// </summary>
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
        foreach (string argument in new[] { "-f", "-y", "-qq", "-e", $"trace={syscalls}", "-o", log, "-p", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) })
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

    /// <summary>
    /// The calls <paramref name="log"/> holds, one line each, in the order they were made. strace -f
    /// splits a call that another traced thread's call overtakes into "fsync(5&lt;/path&gt; &lt;unfinished ...&gt;"
    /// and, later, "&lt;... fsync resumed&gt;) = 0": a test that looked for the whole call on one line
    /// missed it whenever other tests in the process were making calls at the same moment. Here the
    /// two halves are one line again, as strace writes a call it is not interrupted in, where the call began.
    /// </summary>
    public static IReadOnlyList<string> ReadCalls(string log)
    {
        const string Unfinished = " <unfinished ...>";
        const string Resumed = " resumed>";
        var calls = new List<string>();
        var pending = new Dictionary<string, int>(); // a thread's call begun and not yet resumed: where it is in calls
        foreach (string line in File.ReadAllLines(log))
        {
            string thread = line.Split(' ', 2)[0]; // -f writes the thread's id first
            int resumed = line.IndexOf(Resumed, StringComparison.Ordinal);
            if (line.Contains("<... ", StringComparison.Ordinal) && resumed >= 0 && pending.Remove(thread, out int begun))
            {
                // strace pads a short line out to its result column: "<... fsync resumed>)        = 0".
                string rest = line[(resumed + Resumed.Length)..];
                int result = rest.LastIndexOf(" = ", StringComparison.Ordinal);
                calls[begun] += result > 0 ? rest[..result].TrimEnd() + rest[result..] : rest;
            }
            else if (line.EndsWith(Unfinished, StringComparison.Ordinal))
            {
                pending[thread] = calls.Count;
                calls.Add(line[..^Unfinished.Length]);
            }
            else
            {
                calls.Add(line);
            }
        }

        return calls;
    }

    public void Dispose()
    {
        if (!_strace.HasExited)
        {
            // SIGINT: strace detaches from every thread and flushes its log (SIGKILL would leave neither done).
            // Sent with kill(2), not by starting kill(1): a child of this process is traced too (-f), and one
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
