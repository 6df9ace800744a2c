using System.Runtime.InteropServices;

namespace Ossuary.Cli.Net;

/// <summary>
/// How many connections a server of the tool holds at once: half the file descriptors the process
/// may open, less a reserve. Past it, connections wait in the listen backlog. A flood that took
/// every descriptor did not just fail the next accept: the runtime opens files as it loads code and
/// reads settings, and it aborted the process ("Out of memory.") when it found none left.
/// </summary>
internal static partial class ConnectionBudget
{
    // The runtime's own descriptors (assemblies, /proc, epoll, pipes) and the tool's files.
    private const int Reserve = 64;
    private const int Smallest = 8;

    // Without a limit to read (Windows), a bound that no real server of the tool reaches.
    private const int Unlimited = 1 << 20;

    /// <summary>The connections a server may hold at once.</summary>
    public static int Connections { get; } = Compute();

    private static int Compute()
    {
        // RLIMIT_NOFILE: 7 on Linux, 8 on macOS and FreeBSD. The runtime has already raised the soft limit to the hard one.
        int resource = OperatingSystem.IsLinux() ? 7 : OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD() ? 8 : -1;
        if (resource < 0 || GetLimit(resource, out ResourceLimit limit) != 0)
        {
            return Unlimited;
        }

        long descriptors = (long)Math.Min((ulong)limit.Current, Unlimited);
        return (int)Math.Max(Smallest, (descriptors - Reserve) / 2);
    }

    // rlim_t of the getrlimit symbol: unsigned long, the word size on Linux; 64 bits on (64-bit only) macOS.
    [StructLayout(LayoutKind.Sequential)]
    private struct ResourceLimit
    {
        public nuint Current;
        public nuint Maximum;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetLimit(int resource, out ResourceLimit limit);
}
