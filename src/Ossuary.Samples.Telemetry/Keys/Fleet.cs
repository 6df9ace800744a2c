using System.Globalization;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Samples.Telemetry.Keys;

/// <summary>
/// The key files of a fleet, in one directory:
/// <c>server.key</c> (the server's secret), <c>server.pub</c> (what devices pin),
/// <c>devices.keys</c> (the server's allow-list: <c>key-hex device-NNNN</c> per line) and
/// <c>devices/device-NNNN.key</c> (each device's secret), and a <c>.gitignore</c> that keeps all of
/// it out of git.
/// </summary>
public sealed class Fleet(string directory)
{
    /// <summary>The fleet's directory.</summary>
    public string Directory { get; } = directory;

    /// <summary>The server's secret key file.</summary>
    public string ServerKeyPath => Path.Combine(Directory, "server.key");

    /// <summary>The server's public key file.</summary>
    public string ServerPublicKeyPath => Path.Combine(Directory, "server.pub");

    /// <summary>The authorized-keys file listing every device.</summary>
    public string AuthorizedKeysPath => Path.Combine(Directory, "devices.keys");

    /// <summary>The directory of the devices' secret key files.</summary>
    public string DevicesDirectory => Path.Combine(Directory, "devices");

    /// <summary>The name of device <paramref name="index"/> (its key file's name and its comment in devices.keys).</summary>
    public static string DeviceName(int index) => "device-" + index.ToString("D4", CultureInfo.InvariantCulture);

    /// <summary>
    /// Generates a server key and <paramref name="devices"/> device keys; refuses to overwrite an
    /// existing fleet. All or nothing: if a file cannot be written (a full disk, say), the files
    /// written so far are removed again, so that the command can simply be run again.
    /// </summary>
    /// <exception cref="IOException">A key file already exists or cannot be written.</exception>
    public static Fleet Generate(string directory, int devices)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(devices);
        var fleet = new Fleet(directory);
        var made = new FleetFiles(directory, fleet.DevicesDirectory);
        try
        {
            WriteFiles(fleet, devices, made);
            return fleet;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            IReadOnlyList<string> left = made.Remove();
            string cleanUp = left.Count == 0
                ? "the files written so far were removed"
                : $"these files it wrote could not be removed; remove them before running it again: {string.Join(", ", left)}";
            throw new IOException($"{e.Message.TrimEnd('.')}; the fleet was not made ({cleanUp}).", e);
        }
    }

    private static void WriteFiles(Fleet fleet, int devices, FleetFiles made)
    {
        made.CreateDirectories();

        // Secret keys: never committed by accident, wherever --out points (the repository itself, say).
        string ignore = Path.Combine(fleet.Directory, ".gitignore");
        if (!File.Exists(ignore))
        {
            made.Add(ignore);
            File.WriteAllText(ignore, "# Secret keys made by the telemetry sample's fleet command: never commit them.\n*\n");
        }

        using (var server = OssuaryIdentity.Generate())
        {
            KeyFiles.WriteSecretKey(fleet.ServerKeyPath, server); // never under its name unless whole
            made.Add(fleet.ServerKeyPath);
            using var publicKey = new StreamWriter(made.CreateNew(fleet.ServerPublicKeyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead));
            publicKey.Write(server.PublicKey + "\n");
        }

        // 0644 whatever the umask: the server refuses an allow-list that others may write.
        using var authorized = new StreamWriter(made.CreateNew(fleet.AuthorizedKeysPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead));
        authorized.WriteLine("# Ossuary telemetry fleet: one device key per line (key-hex comment).");
        for (int i = 0; i < devices; i++)
        {
            using var device = OssuaryIdentity.Generate();
            string path = Path.Combine(fleet.DevicesDirectory, DeviceName(i) + ".key");
            KeyFiles.WriteSecretKey(path, device);
            made.Add(path);
            authorized.WriteLine(OssuaryAuthorizedKeys.FormatLine(device.PublicKey, DeviceName(i)));
        }
    }

    /// <summary>The server's key as devices pin it: server.pub, or derived from server.key when only that is present.</summary>
    public OssuaryPublicKey LoadServerPublicKey()
    {
        if (File.Exists(ServerPublicKeyPath))
        {
            return KeyFiles.ReadPublicKey(ServerPublicKeyPath);
        }

        using OssuaryIdentity server = KeyFiles.ReadSecretKey(ServerKeyPath);
        return server.PublicKey;
    }

    /// <summary>The first <paramref name="count"/> device identities, in file-name order. Dispose them when done.</summary>
    /// <exception cref="InvalidOperationException">The fleet has fewer devices.</exception>
    public IReadOnlyList<OssuaryIdentity> LoadDevices(int count)
    {
        string[] files = System.IO.Directory.GetFiles(DevicesDirectory, "*.key");
        Array.Sort(files, StringComparer.Ordinal);
        if (files.Length < count)
        {
            throw new InvalidOperationException($"{DevicesDirectory} holds {files.Length} device keys; {count} were asked for.");
        }

        var identities = new List<OssuaryIdentity>(count);
        try
        {
            foreach (string file in files.AsSpan(0, count))
            {
                identities.Add(KeyFiles.ReadSecretKey(file));
            }

            return identities;
        }
        catch
        {
            identities.ForEach(identity => identity.Dispose());
            throw;
        }
    }
}
