using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A regular file whose open blocks in the kernel, as one on a hung NFS or FUSE mount does: this process
/// holds a write lease on it (fcntl F_SETLEASE, Linux), and anyone's open of the file, this process's
/// included, waits until the lease is let go (<see cref="Dispose"/>) or the kernel breaks it itself
/// after /proc/sys/fs/lease-break-time (45 seconds by default). No seam, no FUSE, no root: the holder
/// only has to own the file.
/// </summary>
internal sealed class LeasedFile : IDisposable
{
    private const int SetLease = 1024; // F_SETLEASE
    private const int GetLease = 1025; // F_GETLEASE
    private const int SetSignal = 10; // F_SETSIG
    private const int ReadLock = 0; // F_RDLCK
    private const int WriteLock = 1; // F_WRLCK
    private const int Unlocked = 2; // F_UNLCK

    // The signal that tells the holder an open is waiting: SIGURG, which the runtime leaves at its
    // default (ignored). The default, SIGIO, would end the test process.
    private const int Urgent = 23;

    private readonly SafeFileHandle _file;

    /// <summary>Takes the lease on <paramref name="path"/>, which this process must own and nobody may have open.</summary>
    public LeasedFile(string path)
    {
        _file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        if (Fcntl(_file, SetSignal, Urgent) != 0 || Fcntl(_file, SetLease, WriteLock) != 0)
        {
            int error = Marshal.GetLastPInvokeError();
            _file.Dispose();
            throw new IOException($"{path}: no lease (errno {error}).");
        }
    }

    /// <summary>
    /// Whether an open is waiting on the lease now: the kernel marks a write lease that an open for reading
    /// breaks as going down to a read lease. False before anyone opens it, and once the kernel broke it itself.
    /// </summary>
    public bool HoldsAnOpen => Fcntl(_file, GetLease, 0) == ReadLock;

    /// <summary>Lets the lease go: the opens waiting on it go on.</summary>
    public void Dispose()
    {
        if (!_file.IsClosed)
        {
            _ = Fcntl(_file, SetLease, Unlocked);
            _file.Dispose();
        }
    }

    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int Fcntl(SafeFileHandle fd, int command, int argument);
}
