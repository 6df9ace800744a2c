using System.Runtime.InteropServices;

namespace Ossuary.Cli;

/// <summary>
/// Standard input, output or error that the shell closed (<c>&lt;&amp;-</c>, <c>&gt;&amp;-</c>, <c>2&gt;&amp;-</c>). The number
/// does not stay free: a new descriptor takes the lowest free one, and the runtime's first is the
/// internal pipe it creates as it starts, read end and write end both held by this process. A stdin
/// that is that read end never ends (a <c>send -</c> or <c>pubkey -</c> waited forever, a
/// receive-only <c>listen --once</c> exited 1 as if stdin still held data); a stdout that is its
/// write end takes every byte written to it, lost with exit 0. A stderr that is its read end fails
/// every write (EBADF), one that is its write end feeds the runtime's signal pipe.
/// </summary>
/// <remarks>
/// Whatever took the number was opened by this process, close-on-exec as the runtime opens
/// everything; a descriptor handed down by the shell cannot be, since exec closed those. So a
/// close-on-exec (or still closed) descriptor 0 or 1 is one the shell closed. A parent that leaked
/// the write end of our stdin pipe to us is no sign: that stdin is read as it comes.
/// </remarks>
internal static partial class ClosedStdio
{
    private const int GetDescriptorFlags = 1; // F_GETFD, Linux and macOS
    private const int CloseOnExec = 1; // FD_CLOEXEC, Linux and macOS

    private static readonly Lazy<bool> StdinClosed = new(() => ClosedAtStart(0));
    private static readonly Lazy<bool> StdoutClosed = new(() => ClosedAtStart(1));
    private static readonly Lazy<bool> StderrClosed = new(() => ClosedAtStart(2));

    /// <summary>True when the shell closed stdin: there is nothing to read.</summary>
    public static bool Stdin => StdinClosed.Value;

    /// <summary>True when the shell closed stdout: nothing written there reaches anyone.</summary>
    public static bool Stdout => StdoutClosed.Value;

    /// <summary>True when the shell closed stderr: the tool's messages have nowhere to go.</summary>
    public static bool Stderr => StderrClosed.Value;

    private static bool ClosedAtStart(int descriptor)
    {
        if (OperatingSystem.IsWindows())
        {
            return false;
        }

        int flags = Fcntl(descriptor, GetDescriptorFlags);
        return flags == -1 || (flags & CloseOnExec) != 0; // -1: EBADF, closed still
    }

    // fcntl is variadic; F_GETFD takes no third argument, so the fixed two are passed alike everywhere.
    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int descriptor, int command);
}
