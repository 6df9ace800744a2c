using Ossuary.Pipelines;

namespace Ossuary.Cli;

/// <summary>
/// Secret key files: the 32-byte Ed25519 seed as 64 hex characters and a newline, the format C
/// and Rust peers use, readable by the owner only.
/// </summary>
internal static class KeyFiles
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private const UnixFileMode OthersAccess = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    public static OssuaryIdentity ReadSecret(string path)
    {
        if (!File.Exists(path))
        {
            throw new CliException($"key file '{path}' does not exist (make one with: ossuary keygen -o {path})", ExitCodes.BadInput);
        }

        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & OthersAccess) != 0)
        {
            throw new CliException($"key file '{path}' is accessible by other users; refusing to use it (fix with: chmod 600 {path})", ExitCodes.BadInput);
        }

        string text = File.ReadAllText(path);
        try
        {
            return OssuaryIdentity.ParseSeedHex(text);
        }
        catch (FormatException)
        {
            throw new CliException($"key file '{path}' is malformed: it must hold a secret key of 64 hex characters", ExitCodes.BadInput);
        }
    }

    public static void WriteSecret(string path, OssuaryIdentity identity, bool overwrite)
    {
        if (File.Exists(path) && !overwrite)
        {
            throw new CliException($"'{path}' already exists; not overwriting a key (use --force to replace it)", ExitCodes.BadInput);
        }

        if (File.Exists(path))
        {
            // A new file, not the old one truncated: the old one may be readable by others (and
            // open), and the new secret must never be in it, not even until the chmod below.
            File.Delete(path);
        }

        Span<char> hex = stackalloc char[OssuaryIdentity.SeedSize * 2];
        identity.TryFormatSeedHex(hex, out _);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnly;
        }

        using (var writer = new StreamWriter(path, System.Text.Encoding.ASCII, options))
        {
            writer.Write(hex);
            writer.Write('\n');
        }

        hex.Clear();
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, OwnerOnly); // the umask may have cleared bits of 0600
        }
    }

    public static OssuaryPublicKey ParsePublic(string hex, string what) =>
        OssuaryPublicKey.TryParse(hex, out OssuaryPublicKey? key)
            ? key
            : throw new CliException($"{what} '{hex}' is not a public key (64 hex characters)", ExitCodes.BadInput);
}
