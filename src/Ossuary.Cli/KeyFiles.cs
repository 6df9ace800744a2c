using Ossuary.Pipelines;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Cli;

/// <summary>
/// The tool's view of key files: the format is the library's <see cref="OssuarySecretKeyFile"/>;
/// this adds the checks and messages a user needs (missing, readable by others, malformed, --force).
/// </summary>
internal static class KeyFiles
{
    public static OssuaryIdentity ReadSecret(string path)
    {
        if (!File.Exists(path))
        {
            throw new CliException($"key file '{path}' does not exist (make one with: ossuary keygen -o {path})", ExitCodes.BadInput);
        }

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

    public static void WriteSecret(string path, OssuaryIdentity identity, bool overwrite)
    {
        if (File.Exists(path))
        {
            if (!overwrite)
            {
                throw new CliException($"'{path}' already exists; not overwriting a key (use --force to replace it)", ExitCodes.BadInput);
            }

            // A new file, not the old one truncated: the old one may be readable by others (and
            // open), and the new secret must never be in it.
            File.Delete(path);
        }

        OssuarySecretKeyFile.Write(path, identity);
    }

    public static OssuaryPublicKey ParsePublic(string hex, string what) =>
        OssuaryPublicKey.TryParse(hex, out OssuaryPublicKey? key)
            ? key
            : throw new CliException($"{what} '{hex}' is not a public key (64 hex characters)", ExitCodes.BadInput);
}
