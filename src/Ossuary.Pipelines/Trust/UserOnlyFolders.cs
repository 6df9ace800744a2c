namespace Ossuary.Pipelines.Trust;

/// <summary>
/// The folders above a known-hosts file, made for this user only (0700, as ssh makes ~/.ssh) whatever
/// the umask: others who may write a folder above the file can rename another known-hosts file in,
/// whatever its mode. One implementation for the library's <see cref="OssuaryKnownHosts.Add"/> and the
/// tool's <c>known-hosts set</c> and <c>--tofu</c> (through InternalsVisibleTo).
/// </summary>
internal static class UserOnlyFolders
{
    private const UnixFileMode UserOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Creates the folder that holds <paramref name="path"/> if missing, and the missing ones above it, each 0700 (on Windows, as the system makes them).</summary>
    public static void CreateFor(string path)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is null || Directory.Exists(directory))
        {
            return;
        }

        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
            return;
        }

        Create(directory);
    }

    /// <summary>Creates <paramref name="directory"/> and the missing folders above it, each 0700: the mode overload sets only the last one's.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void Create(string directory)
    {
        string? parent = Path.GetDirectoryName(directory);
        if (parent is not null && !Directory.Exists(parent))
        {
            Create(parent);
        }

        Directory.CreateDirectory(directory, UserOnly);
    }
}
