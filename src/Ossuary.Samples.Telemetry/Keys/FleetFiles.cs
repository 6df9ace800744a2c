namespace Ossuary.Samples.Telemetry.Keys;

/// <summary>
/// What one <c>fleet</c> run made (files, and the directories that were not there before), so that a
/// run that fails partway takes it all away again: a half-made fleet was refused on the next run
/// ("exists") and lacked devices its allow-list named.
/// </summary>
internal sealed class FleetFiles(string directory, string devicesDirectory)
{
    private readonly List<string> _files = [];
    private readonly List<string> _directories = [];

    /// <summary>Creates the fleet's directories, remembering those that were not there.</summary>
    public void CreateDirectories()
    {
        foreach (string folder in new[] { directory, devicesDirectory })
        {
            if (!Directory.Exists(folder))
            {
                Directory.CreateDirectory(folder);
                _directories.Add(folder);
            }
        }
    }

    /// <summary>Remembers a file this run made.</summary>
    public void Add(string path) => _files.Add(path);

    /// <summary>A new file (never one that exists) with <paramref name="mode"/> whatever the umask, remembered once made.</summary>
    public FileStream CreateNew(string path, UnixFileMode mode)
    {
        var created = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            created.UnixCreateMode = mode;
        }

        var file = new FileStream(path, created);
        _files.Add(path);
        return file;
    }

    /// <summary>
    /// Removes what this run made, newest first. Returns the files that could not be removed (a
    /// file system gone read-only, say), with why, so that the error does not claim a clean slate
    /// the next run would be refused on; a directory that is not empty stays without a word (someone
    /// else put something there meanwhile).
    /// </summary>
    public IReadOnlyList<string> Remove()
    {
        var left = new List<string>();
        foreach (string path in Enumerable.Reverse(_files))
        {
            try
            {
                File.Delete(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                left.Add($"{path} ({e.Message.TrimEnd('.')})");
            }
        }

        foreach (string folder in Enumerable.Reverse(_directories))
        {
            try
            {
                Directory.Delete(folder); // only if empty: never what someone else put there meanwhile
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        return left;
    }
}
