using System.Runtime.InteropServices;

namespace Ossuary.Pipelines.Trust;

/// <summary>
/// fsync of a directory, which makes a name given in it (a rename) survive a crash. .NET opens no
/// directory as a file, hence libc. Windows has no such call (and needs none for this).
/// The one implementation for the library's key files and the tool's received files, keys and
/// known-hosts files (the tool sees it through InternalsVisibleTo).
/// </summary>
internal static partial class DirectorySync
{
    private const int ReadOnly = 0; // O_RDONLY, Linux and macOS
    private const int NotSupported = 22; // EINVAL: a file system that cannot sync a directory

    public static void Sync(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        int fd = Open(directory, ReadOnly);
        if (fd < 0)
        {
            throw new IOException($"cannot open directory '{directory}' to sync it: {Marshal.GetLastPInvokeErrorMessage()}");
        }

        try
        {
            if (Fsync(fd) != 0 && Marshal.GetLastPInvokeError() != NotSupported)
            {
                throw new IOException($"cannot sync directory '{directory}': {Marshal.GetLastPInvokeErrorMessage()}");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
