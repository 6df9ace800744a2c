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
                return OssuarySecretKeyFile.Read(StdPaths.OpenStdin("the secret key"), "standard input");
            }
            catch (FormatException)
            {
                throw new CliException("standard input does not hold a secret key: it must be 64 hex characters", ExitCodes.BadInput);
            }
        }

        StdPaths.RequireFile(path, "key file", $"make one with: ossuary keygen -o {path}");

        // A device's mode is no key's: "fix with: chmod 600 /dev/zero" must never be said.
        RegularFile.Require(path, "secret key", pipeAllowed: true);
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

    /// <summary>Writes a new secret key file (mode 0600), synced to disk with its name; <c>-</c> writes the key to standard output, as <c>wg genkey</c> does.</summary>
    /// <remarks>
    /// The key is written to a new file beside <paramref name="path"/> and takes the name only once
    /// whole: a write that fails (a full disk) leaves no file under the name, never an empty or cut
    /// key that the next keygen would refuse to replace and every command would call malformed.
    /// With <paramref name="overwrite"/> the name is taken by a rename over the old file, not the old
    /// one truncated: the old one may be readable by others (and open), and the new secret must never
    /// be in it; and renamed, not deleted first, so that a failure leaves the old key, not neither.
    /// </remarks>
    public static void WriteSecret(string path, OssuaryIdentity identity, bool overwrite)
    {
        if (StdPaths.IsStdio(path))
        {
            WriteSecretToStdout(identity);
            return;
        }

        StdPaths.RequireNotDirectory(path, "key file");
        bool replacing = File.Exists(path) || IsLink(path);
        if (replacing && !overwrite)
        {
            throw new CliException($"'{path}' already exists; not overwriting a key (use --force to replace it)", ExitCodes.BadInput);
        }

        // The library's draft, owner-only and synced before it is named: a crash must not leave the
        // name (and the public key printed for sharing) with the secret's bytes still unwritten.
        string? draft = null;
        try
        {
            draft = OssuarySecretKeyFile.WriteDraft(Path.GetFullPath(path), identity);

            // Without --force a link that fails if the name was taken meanwhile; with it a rename over it.
            if (overwrite)
            {
                File.Move(draft, path, overwrite: true);
            }
            else
            {
                ExclusiveLink.Take(draft, path);
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A full disk reaches us as IOException, a file-size limit as ArgumentException from the file stream.
            if (draft is not null)
            {
                Discard(draft);
            }

            if (!overwrite && ex is IOException && (File.Exists(path) || IsLink(path)))
            {
                throw new CliException($"'{path}' appeared while writing the key; not overwriting it", ExitCodes.BadInput);
            }

            // The library names the key file where the system named the draft; the naming here may too.
            string why = draft is null ? ex.Message : ex.Message.Replace(draft, Path.GetFullPath(path), StringComparison.Ordinal);
            if (replacing)
            {
                throw new CliException($"cannot write the new key beside '{path}' ({why}); the old key is unchanged");
            }

            // A folder that is missing or not ours is the path's fault; anything else (a full disk) is not.
            throw new CliException(
                $"cannot write the key to '{path}' ({why}); no key file was made",
                ex is DirectoryNotFoundException or UnauthorizedAccessException ? ExitCodes.BadInput : ExitCodes.Failure);
        }

        try
        {
            DirectorySync.Sync(Path.GetDirectoryName(Path.GetFullPath(path))!); // and so must the name
        }
        catch (IOException ex)
        {
            throw new CliException($"wrote the key to '{path}', but its name may not survive a crash: {ex.Message}");
        }
    }

    private static void Discard(string draft)
    {
        try
        {
            File.Delete(draft);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The draft was never made (no such folder, no permission), or cannot be removed: the
            // failure that brought us here is the one to report.
        }
    }

    public static OssuaryPublicKey ParsePublic(string hex, string what)
    {
        if (!OssuaryPublicKey.TryParse(hex, out OssuaryPublicKey? key))
        {
            throw new CliException($"{what} '{hex}' is not a public key (64 hex characters)", ExitCodes.BadInput);
        }

        // The handshake refuses both: a peer could never match it, and a trust file would not read it back.
        if (key.IsUnprovable)
        {
            throw new CliException($"{what} '{hex}' is {(key.IsAnonymous ? "the key an anonymous client sends" : "all zeros")}, which no peer can prove", ExitCodes.BadInput);
        }

        return key;
    }

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
