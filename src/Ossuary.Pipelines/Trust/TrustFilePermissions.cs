namespace Ossuary.Pipelines.Trust;

/// <summary>
/// Trust files (authorized keys, known hosts) that users other than the owner may write are refused,
/// as OpenSSH's StrictModes refuses such an authorized_keys: whoever can write the allow-list can
/// admit their own key, and whoever can write the known hosts can be trusted as any server. So are
/// files another user owns (anyone but this process's user and root): the owner may rewrite one, or
/// chmod it open, whenever they like. The mode and owner checked are the opened file's, so a name
/// swapped (or a link) between a check and the open cannot slip another file in.
/// </summary>
internal static class TrustFilePermissions
{
    private const UnixFileMode WritableByOthers = UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;

    /// <summary>
    /// Opens <paramref name="path"/> for reading, refusing it if others may write it or another user owns it.
    /// No advisory lock is taken, so none that another user holds on the file stands in the way (<see cref="UnlockedOpen"/>).
    /// </summary>
    /// <param name="path">The trust file.</param>
    /// <param name="kind">What the file is, for the message ("authorized-keys").</param>
    /// <param name="risk">What a writer could do, for the message ("admit their own key").</param>
    /// <exception cref="UnauthorizedAccessException">Others may write the file, another user owns it, it is a folder or not a regular file (a named pipe), or it cannot be opened.</exception>
    public static FileStream OpenRead(string path, string kind, string risk)
    {
        RegularFile.Require(path, kind); // a named pipe's open waits for a writer
        TypeChecked?.Invoke(path);
        FileStream file;
        try
        {
            file = UnlockedOpen.Read(path, kind); // a lock any reader could take would keep the file from us; a pipe swapped in is refused
        }
        catch (UnauthorizedAccessException ex) when (Directory.Exists(path))
        {
            throw Folder(path, kind, ex);
        }

        try
        {
            Require(file, path, kind, risk);
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>A test's seam: called with the path once its type is checked and before it is opened, to swap the name in between.</summary>
    internal static Action<string>? TypeChecked { get; set; }

    /// <summary>
    /// The refusal of a folder named where a trust or key file belongs (/etc/ossuary for
    /// /etc/ossuary/authorized_keys): .NET's own is "Access to the path ... is denied", which reads as a
    /// permission that a chmod would fix.
    /// </summary>
    public static UnauthorizedAccessException Folder(string path, string kind, Exception? inner = null) =>
        new($"{path}: the {kind} file is a folder, not a file; name the file.", inner);

    /// <summary>Throws if users other than the owner may write the opened <paramref name="file"/>, or another user owns it (never on Windows).</summary>
    /// <exception cref="UnauthorizedAccessException">Others may write it, or another user owns it.</exception>
    public static void Require(FileStream file, string path, string kind, string risk)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        if ((File.GetUnixFileMode(file.SafeFileHandle) & WritableByOthers) != 0)
        {
            throw new UnauthorizedAccessException(
                $"{path}: the {kind} file is writable by other users, who could {risk}; refusing to use it (fix with: chmod go-w {path}).");
        }

        FileOwner.Require(file.SafeFileHandle, path, kind, risk);
    }
}
