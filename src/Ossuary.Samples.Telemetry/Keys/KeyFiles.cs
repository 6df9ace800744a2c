using Ossuary.Pipelines;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Samples.Telemetry.Keys;

/// <summary>
/// Key files as the original's tools write them: a secret key file holds the 32-byte seed as 64 hex
/// characters (owner-only, mode 0600 on Unix); a public key file holds the public key as 64 hex characters.
/// </summary>
public static class KeyFiles
{
    /// <summary>Writes <paramref name="identity"/>'s secret seed to a new owner-only file; an existing file is never overwritten.</summary>
    /// <exception cref="IOException">The file exists or cannot be written.</exception>
    public static void WriteSecretKey(string path, OssuaryIdentity identity) => OssuarySecretKeyFile.Write(path, identity);

    /// <summary>Reads a secret key file written by <see cref="WriteSecretKey"/> (or by hand: 64 hex characters).</summary>
    /// <exception cref="FormatException">The file does not hold 64 hex characters; the message names the file, not its content.</exception>
    public static OssuaryIdentity ReadSecretKey(string path) => OssuarySecretKeyFile.Read(path);

    /// <summary>Reads a public key file.</summary>
    /// <exception cref="FormatException">The file does not hold 64 hex characters.</exception>
    public static OssuaryPublicKey ReadPublicKey(string path) =>
        OssuaryPublicKey.TryParse(File.ReadAllText(path), out OssuaryPublicKey? key)
            ? key
            : throw new FormatException($"{path}: a public key file holds 64 hex characters.");
}
