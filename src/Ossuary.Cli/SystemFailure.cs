namespace Ossuary.Cli;

/// <summary>
/// An I/O failure that is the system's, not the input's: a full disk, a quota, a file too large, a
/// read-only file system, an I/O error, a closed pipe, a file another process kept locked for longer than
/// the tool waits for it. Such a failure is exit 1 (data that could not be written; the same command may
/// succeed later), never exit 2, which tells a script to fix its arguments or files.
/// </summary>
internal static class SystemFailure
{
    public const int IOError = 5; // EIO
    public const int FileTooLarge = 27; // EFBIG
    public const int NoSpace = 28; // ENOSPC
    public const int ReadOnlyFileSystem = 30; // EROFS
    public const int BrokenPipe = 32; // EPIPE

    /// <summary>
    /// EWOULDBLOCK: 11 on Linux, 35 on macOS and FreeBSD. A known-hosts file another process held locked for
    /// longer than the library waits (<see cref="Ossuary.Pipelines.Trust.OssuaryKnownHosts.LockWait"/>): it
    /// was exit 2, bad input, though nothing in the input was wrong and the same command works once the lock goes.
    /// </summary>
    public static readonly int Held = OperatingSystem.IsMacOS() || OperatingSystem.IsMacCatalyst() || OperatingSystem.IsFreeBSD() ? 35 : 11;

    /// <summary>EDQUOT: 122 on Linux, 69 on macOS and FreeBSD.</summary>
    public static readonly int QuotaExceeded = OperatingSystem.IsMacOS() || OperatingSystem.IsMacCatalyst() || OperatingSystem.IsFreeBSD() ? 69 : 122;

    /// <summary>True for an <see cref="IOException"/> whose errno (its HResult on Linux and macOS) is one of the system's failures.</summary>
    public static bool Is(Exception ex) =>
        ex is IOException { HResult: IOError or FileTooLarge or NoSpace or ReadOnlyFileSystem or BrokenPipe } || (ex is IOException other && (other.HResult == QuotaExceeded || other.HResult == Held));

    /// <summary>The exit code for a failure to read or write a file the user named: 1 if the system failed, else 2 (a missing folder, no permission).</summary>
    public static int ExitCode(Exception ex) => Is(ex) ? ExitCodes.Failure : ExitCodes.BadInput;
}
