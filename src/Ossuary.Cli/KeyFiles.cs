using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Cli;

/// <summary>
/// The tool's view of key files: the format is the library's <see cref="OssuarySecretKeyFile"/>;
/// this adds the checks and messages a user needs (missing, a directory, readable by others,
/// malformed, --force) and <c>-</c> for standard input and output.
/// </summary>
internal static class KeyFiles
{
    /// <summary>Reads a secret key file; <c>-</c> reads standard input where <paramref name="allowStdin"/> (pubkey), and is refused where stdin carries a connection's data.</summary>
    public static OssuaryIdentity ReadSecret(string path, bool allowStdin = false)
    {
        if (StdPaths.IsStdio(path))
        {
            if (!allowStdin)
            {
                throw new CliException("a secret key cannot come from standard input here: stdin carries the connection's data", ExitCodes.BadInput);
            }

            try
            {
                return OssuarySecretKeyFile.Read(Console.OpenStandardInput(), "standard input");
            }
            catch (FormatException)
            {
                throw new CliException("standard input does not hold a secret key: it must be 64 hex characters", ExitCodes.BadInput);
            }
        }

        StdPaths.RequireFile(path, "key file", $"make one with: ossuary keygen -o {path}");
        if (OssuarySecretKeyFile.IsAccessibleByOthers(path))
        {
            throw new CliException($"key file '{path}' is accessible by other users; refusing to use it (fix with: chmod 600 {path})", ExitCodes.BadInput);
        }

        try
        {
            return OssuarySecretKeyFile.Read(path);
        }
        catch (FormatException)
        {
            throw new CliException($"key file '{path}' is malformed: it must hold a secret key of 64 hex characters", ExitCodes.BadInput);
        }
    }

    /// <summary>Writes a new secret key file (mode 0600); <c>-</c> writes the key to standard output, as <c>wg genkey</c> does.</summary>
    public static void WriteSecret(string path, OssuaryIdentity identity, bool overwrite)
    {
        if (StdPaths.IsStdio(path))
        {
            WriteSecretToStdout(identity);
            return;
        }

        StdPaths.RequireNotDirectory(path, "key file");
        if (File.Exists(path) || IsLink(path))
        {
            if (!overwrite)
            {
                throw new CliException($"'{path}' already exists; not overwriting a key (use --force to replace it)", ExitCodes.BadInput);
            }

            ReplaceSecret(path, identity);
            return;
        }

        try
        {
            OssuarySecretKeyFile.Write(path, identity);
        }
        catch (IOException) when (File.Exists(path) || IsLink(path))
        {
            throw new CliException($"'{path}' appeared while writing the key; not overwriting it", ExitCodes.BadInput);
        }
    }

    /// <summary>
    /// --force: the new key is written to a new file beside the old one and renamed over it. A new
    /// file, not the old one truncated: the old one may be readable by others (and open), and the new
    /// secret must never be in it. And renamed, not deleted first: a write that fails (a full disk)
    /// must leave the old key, not neither key.
    /// </summary>
    private static void ReplaceSecret(string path, OssuaryIdentity identity)
    {
        string draft = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.new");
        try
        {
            OssuarySecretKeyFile.Write(draft, identity);
            File.Move(draft, path, overwrite: true);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Whatever failed (a full disk reaches us as IOException, a file-size limit as
            // ArgumentException from the file stream), the draft goes and the old key stays.
            File.Delete(draft);
            throw new CliException($"cannot write the new key beside '{path}' ({ex.Message}); the old key is unchanged");
        }
    }

    public static OssuaryPublicKey ParsePublic(string hex, string what) =>
        OssuaryPublicKey.TryParse(hex, out OssuaryPublicKey? key)
            ? key
            : throw new CliException($"{what} '{hex}' is not a public key (64 hex characters)", ExitCodes.BadInput);

    private static bool IsLink(string path) => new FileInfo(path).LinkTarget is not null;

    private static void WriteSecretToStdout(OssuaryIdentity identity)
    {
        Span<char> hex = stackalloc char[OssuaryIdentity.SeedSize * 2];
        Span<byte> line = stackalloc byte[OssuaryIdentity.SeedSize * 2 + 1];
        try
        {
            identity.TryFormatSeedHex(hex, out _);
            Encoding.ASCII.GetBytes(hex, line);
            line[^1] = (byte)'\n';
            StdPaths.WriteStdout(line, "the secret key");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(hex));
            CryptographicOperations.ZeroMemory(line);
        }
    }
}
