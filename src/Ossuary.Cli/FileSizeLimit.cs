using System.Runtime.InteropServices;

namespace Ossuary.Cli;

/// <summary>
/// The file size limit (<c>ulimit -f</c>, <c>LimitFSIZE=</c> of a systemd unit, <c>fsize</c> in
/// limits.conf). A write past it raises SIGXFSZ, whose default action ends the process on the spot:
/// <c>receive</c> died with its partial file left behind and its sender told nothing but that the
/// connection broke, <c>connect &gt; file</c> died without telling its peer, and the tool's own
/// handling of the failure (EFBIG: "file too large" to the sender, exit 1) never ran. Ignored, the
/// signal leaves the write to fail with EFBIG, which every command reports as the storage failure it is.
/// </summary>
internal static partial class FileSizeLimit
{
    private const int FileSizeExceeded = 25; // SIGXFSZ, Linux and macOS
    private const nint Ignore = 1; // SIG_IGN

    /// <summary>Makes a write past the limit fail (EFBIG) instead of ending the process; first thing in Main, before any file is written.</summary>
    public static void FailWritesPastIt()
    {
        if (!OperatingSystem.IsWindows())
        {
            // No child process inherits the ignored signal: the tool starts none.
            Signal(FileSizeExceeded, Ignore);
        }
    }

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial nint Signal(int signal, nint handler);
}
