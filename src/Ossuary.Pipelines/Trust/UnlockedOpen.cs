using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Ossuary.Pipelines.Trust;

/// <summary>
/// Opens a trust file for reading without the advisory lock that .NET takes on every file it opens
/// on Unix (flock: a shared lock to read, which fails at once while anyone holds an exclusive one).
/// A lock asks for no permission but to open the file: whoever may read an authorized-keys file
/// (often everyone, 0644 in /etc/ossuary) could hold one with <c>flock -x</c>, and the server then
/// could not start, and a reload could not read the file, so it kept the keys it had, a revoked one
/// included, for as long as that user liked. A reader of a file that is replaced by rename, as a
/// trust file should be, needs no lock: it reads the old file or the new one.
/// </summary>
internal static partial class UnlockedOpen
{
    private const int ReadOnly = 0; // O_RDONLY, Linux and macOS
    private const int Interrupted = 4; // EINTR, Linux and macOS
    private const int MaxPause = 50; // milliseconds between opens while a lease is broken

    /// <summary>
    /// <paramref name="path"/> opened to read, with no lock taken; on systems other than Linux and macOS
    /// as .NET opens it. While a lease another process holds is broken, the same open is made again until
    /// it is let go (the kernel breaks it itself after /proc/sys/fs/lease-break-time, 45 s by default); any
    /// other refusal (no such file, no permission) and a folder are thrown as .NET would throw them, so that
    /// its refusal is the one callers have always caught, without opening the name again. It is opened without
    /// waiting for a writer (O_NONBLOCK), and the file opened must be a regular one: a named pipe renamed
    /// over the name after the caller checked it by name (<see cref="RegularFile"/>) was opened for reading,
    /// which waited for a writer, for ever if none came. O_NONBLOCK has no effect on a regular file's reads,
    /// so it is left set.
    /// </summary>
    /// <param name="path">The trust file.</param>
    /// <param name="kind">What the file is, for the message ("authorized-keys").</param>
    /// <param name="bufferSize">The stream's buffer; 0 for none (a secret key's copy would stay in it).</param>
    /// <exception cref="UnauthorizedAccessException">The file opened is a named pipe, a socket or a device.</exception>
    public static FileStream Read(string path, string kind, int bufferSize = 4096)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize);
        }

        var handle = new SafeFileHandle(OpenUnblocked(path), ownsHandle: true);
        try
        {
            if (!RegularFile.RequireOpened(handle, path, kind))
            {
                return new FileStream(handle, FileAccess.Read, bufferSize);
            }
        }
        catch
        {
            handle.Dispose();
            throw;
        }

        handle.Dispose();

        // A folder: refused as .NET refuses one (callers name it as a folder), not opened again by name,
        // which a named pipe swapped in meanwhile would have held until a writer came.
        throw new UnauthorizedAccessException($"Access to the path '{Path.GetFullPath(path)}' is denied.");
    }

    /// <summary>
    /// The descriptor of <paramref name="path"/> opened without waiting for a writer, the open made again
    /// while a lease is broken (EWOULDBLOCK: the kernel tells the holder, and breaks it itself after
    /// /proc/sys/fs/lease-break-time) or a signal cut it short (EINTR). Those were followed by .NET's open
    /// of the name, blocking: a named pipe renamed over the file meanwhile was opened for reading, which
    /// waited for a writer, for ever if none came, where the same open made again refuses it.
    /// </summary>
    private static int OpenUnblocked(string path)
    {
        string full = Path.GetFullPath(path);
        int pause = 1;
        while (true)
        {
            int descriptor = Open(full, ReadOnly | CloseOnExec | NonBlocking);
            if (descriptor >= 0)
            {
                return descriptor;
            }

            int error = Marshal.GetLastPInvokeError();
            Refused?.Invoke(path);
            if (Refusal(path, error) is { } refusal)
            {
                throw refusal;
            }

            if (error != Interrupted)
            {
                Thread.Sleep(pause); // the lease's holder is told, and has until the kernel's break time to let go
                pause = Math.Min(pause * 2, MaxPause);
            }
        }
    }

    /// <summary>
    /// The exception for the system's refusal <paramref name="error"/> (errno) of the open, as .NET's own open
    /// would throw it; null for one that the same open made again gets past: a lease another process holds
    /// (EWOULDBLOCK, which a non-blocking open gets while the lease is broken; only the file's owner can take
    /// one) or a signal (EINTR). Any other refusal was followed by .NET's open of the name, blocking: whoever
    /// may write the folder could make the first open fail (no file yet, one nobody may read) and then put a
    /// named pipe there, whose open waited for a writer, for ever if none came.
    /// </summary>
    private static Exception? Refusal(string path, int error)
    {
        string full = Path.GetFullPath(path);
        int wouldBlock = OperatingSystem.IsMacOS() ? 35 : 11; // EWOULDBLOCK (EAGAIN)
        return error switch
        {
            _ when error == wouldBlock => null,
            Interrupted => null,
            2 when Directory.Exists(Path.GetDirectoryName(full)) => new FileNotFoundException($"Could not find file '{full}'.", full), // ENOENT
            2 or 20 => new DirectoryNotFoundException($"Could not find a part of the path '{full}'."), // ENOENT, ENOTDIR
            1 or 13 => new UnauthorizedAccessException($"Access to the path '{full}' is denied."), // EPERM, EACCES
            _ => new IOException($"{full}: {Marshal.GetPInvokeErrorMessage(error)}", error),
        };
    }

    /// <summary>A test's seam: called with the path when the system refused its non-blocking open, to swap the name then.</summary>
    internal static Action<string>? Refused { get; set; }

    /// <summary>O_NONBLOCK: the open of a named pipe returns at once rather than waiting for a writer.</summary>
    private static int NonBlocking => OperatingSystem.IsMacOS() ? 0x4 : 0x800;

    /// <summary>O_CLOEXEC: a program the process starts meanwhile does not inherit the descriptor.</summary>
    private static int CloseOnExec => OperatingSystem.IsMacOS() ? 0x1000000 : 0x80000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);
}
