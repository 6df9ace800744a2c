namespace Ossuary.Pipelines.Trust;

/// <summary>
/// One open of a known-hosts file that another writer may hold, attempt by attempt: the caller
/// waits between attempts its own way, <see cref="OssuaryKnownHosts.OpenWithRetry"/> by sleeping (its
/// callers are synchronous) and <see cref="OssuaryKnownHosts.OpenWithRetryAsync"/> by awaiting a
/// delay, which holds no thread: a trust callback that slept on a thread-pool thread for each
/// connecting client took the pool's threads for as long as the file was held (up to
/// <see cref="OssuaryKnownHosts.LockWait"/>), and the rest of the process waited with it.
/// </summary>
/// <remarks>
/// .NET locks a file opened with <see cref="FileShare.None"/> (flock on Unix, per open file, so threads
/// conflict as processes do), and a conflicting open fails at once rather than waiting. The lock is
/// taken after the open: a writer that held the file meanwhile may have renamed a new file over it,
/// or deleted one it had created, before letting go. The lock is then on a file no folder names, and
/// what was appended to it was lost though the append succeeded (a key recorded on first use,
/// reported as recorded). So the file locked must still be the one the name leads to, or it is
/// opened again (<see cref="FileIdentity"/>).
/// </remarks>
internal sealed class HeldFileOpening
{
    private const int MaxReplaced = 100;
    private const int MaxPause = 50;

    private readonly string _path;
    private readonly FileStreamOptions _options;
    private readonly long _started = Environment.TickCount64;
    private int _pause = 1;
    private int _replaced;

    public HeldFileOpening(string path, FileMode mode, FileAccess access, FileShare share)
    {
        _path = path;
        _options = new FileStreamOptions { Mode = mode, Access = access, Share = share };
        if (!OperatingSystem.IsWindows() && mode != FileMode.Open)
        {
            // Made 0644 whatever the umask (0002 would leave it group-writable, and then refused).
            _options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        }
    }

    /// <summary>Whether an attempt found the file held by another writer: the caller may say that it waits.</summary>
    public bool Held { get; private set; }

    /// <summary>
    /// True for .NET's refusal of an open whose lock another open of the file holds (EWOULDBLOCK from flock; a
    /// sharing or lock violation on Windows): the one refusal that goes once the holder lets go. Any other (a
    /// folder or a file where a folder belongs, a loop of links, a read-only file system, a full disk) was
    /// tried again for <see cref="OssuaryKnownHosts.LockWait"/> as well, and said after 10 s what it said at once.
    /// </summary>
    private static bool IsHeld(IOException ex) =>
        ex.GetType() == typeof(IOException)
        && (OperatingSystem.IsWindows() ? ex.HResult is unchecked((int)0x80070020) or unchecked((int)0x80070021) : ex.HResult == (OperatingSystem.IsMacOS() ? 35 : 11));

    /// <summary>
    /// The file, open and still named by the path; null if another writer holds it (wait
    /// <paramref name="pause"/>, then try again) or it was replaced meanwhile (try again at once, pause 0).
    /// </summary>
    /// <exception cref="IOException">Another writer held it for longer than <see cref="OssuaryKnownHosts.LockWait"/> (the message names the file and says so), it was replaced too often, or it cannot be opened (at once, with the system's reason).</exception>
    /// <exception cref="UnauthorizedAccessException">The file opened is a named pipe, a socket or a device.</exception>
    public FileStream? TryOpen(out TimeSpan pause)
    {
        pause = TimeSpan.Zero;
        FileStream file;
        try
        {
            file = new FileStream(_path, _options);
        }
        catch (IOException ex) when (IsHeld(ex) && Environment.TickCount64 - _started < OssuaryKnownHosts.LockWait.TotalMilliseconds)
        {
            Held = true;
            pause = TimeSpan.FromMilliseconds(_pause);
            _pause = Math.Min(_pause * 2, MaxPause);
            return null;
        }
        catch (IOException ex) when (IsHeld(ex))
        {
            // .NET's own message says only "being used by another process", as if for a moment: the wait that
            // ended, and who may hold a file (anyone who may open it, flock), told a --tofu client's user why it
            // refused a server (a key unrecorded is not trusted) and what to look for. The errno is kept.
            throw new IOException(
                $"'{_path}': another process held the known-hosts file locked for longer than {OssuaryKnownHosts.LockWait.TotalSeconds:0} s " +
                "(another writer, or any process that may open the file and holds a lock on it: flock); giving up.", ex)
            {
                HResult = ex.HResult,
            };
        }

        try
        {
            // The file opened must be a regular one: the caller checked the name, but a named pipe renamed over
            // it meanwhile was opened too (for reading and writing a FIFO opens at once on Linux, so the open
            // itself never waits), and the read of the file then waited for a writer other than this one, for
            // ever: a --tofu client's first connection, or the tool's set, hung on it.
            if (RegularFile.RequireOpened(file.SafeFileHandle, _path, "known-hosts"))
            {
                throw TrustFilePermissions.Folder(_path, "known-hosts");
            }

            if (FileIdentity.StillNamedBy(file.SafeFileHandle, _path))
            {
                return file;
            }
        }
        catch
        {
            file.Dispose();
            throw;
        }

        // Replaced or deleted while this waited for it: the name's file now (or a new one) is the file.
        // Not bound by LockWait (the wait that ended was for a lock, and it was had), but not endless.
        file.Dispose();
        if (++_replaced == MaxReplaced)
        {
            throw new IOException($"'{_path}' was replaced {MaxReplaced} times while this opened it; giving up.");
        }

        return null;
    }
}
