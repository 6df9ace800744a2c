using System.Globalization;
using Ossuary.Cli.Net;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Cli;

/// <summary>
/// The tool's upkeep of a known-hosts file beyond the library's <see cref="OssuaryKnownHosts"/>:
/// which line says what about a host, removing a host's lines (ssh-keygen -R), and a private
/// <c>~/.ossuary</c>.
/// </summary>
internal static class KnownHostsFile
{
    public static string DefaultPath =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ossuary", "known_hosts");

    public static OssuaryKnownHosts Load(string path)
    {
        StdPaths.RequireNotDirectory(path, "known-hosts file");
        try
        {
            return OssuaryKnownHosts.Load(path);
        }
        catch (FormatException ex)
        {
            throw new CliException($"known-hosts file is malformed: {ex.Message}", ExitCodes.BadInput);
        }
    }

    /// <summary>
    /// Makes the file's folder if missing, owner-only (0700, as ssh does for ~/.ssh): it says
    /// which servers this user talks to.
    /// </summary>
    public static void EnsureDirectory(string path)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is null || Directory.Exists(directory))
        {
            return;
        }

        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
        }
        else
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>The 1-based numbers of the lines that speak of host:port (an exact entry or a host-only one).</summary>
    public static IReadOnlyList<int> LinesFor(string path, HostPort server)
    {
        var lines = new List<int>();
        if (!File.Exists(path))
        {
            return lines;
        }

        int number = 0;
        foreach (string line in File.ReadLines(path))
        {
            number++;
            if (Matches(line, server))
            {
                lines.Add(number);
            }
        }

        return lines;
    }

    /// <summary>Removes every line for host:port (and host-only lines for the host), keeping the old file as FILE.old; returns the lines removed.</summary>
    public static int Remove(string path, HostPort server)
    {
        StdPaths.RequireFile(path, "known-hosts file");
        string[] lines = File.ReadAllLines(path);
        string[] kept = lines.Where(line => !Matches(line, server)).ToArray();
        int removed = lines.Length - kept.Length;
        if (removed == 0)
        {
            return 0;
        }

        // A new file renamed over the old one: a reader never sees half a file.
        string temporary = path + "." + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)) + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = File.GetUnixFileMode(path);
        }

        try
        {
            using (var writer = new StreamWriter(new FileStream(temporary, options)))
            {
                foreach (string line in kept)
                {
                    writer.WriteLine(line);
                }
            }

            File.Copy(path, path + ".old", overwrite: true);
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }

        return removed;
    }

    /// <summary>Removes what the file says about host:port, then records <paramref name="key"/> for it.</summary>
    public static void Replace(string path, HostPort server, OssuaryPublicKey key)
    {
        if (File.Exists(path))
        {
            Remove(path, server);
        }

        EnsureDirectory(path);
        Load(path).Add(server.Host, server.Port, key, $"added by ossuary on {DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}");
    }

    private static bool Matches(string line, HostPort server)
    {
        string trimmed = line.Trim();
        if (trimmed.Length == 0 || trimmed[0] == '#')
        {
            return false;
        }

        try
        {
            // The library's parser decides what the line means, so this agrees with its lookups.
            OssuaryKnownHosts one = OssuaryKnownHosts.Parse(new StringReader(line));
            return one.Find(server.Host, server.Port) is not null;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
