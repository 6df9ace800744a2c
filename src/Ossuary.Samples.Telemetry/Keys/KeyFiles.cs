using System.Security.Cryptography;
using System.Text;
using Ossuary.Pipelines;

namespace Ossuary.Samples.Telemetry.Keys;

/// <summary>
/// Key files as the original's tools write them: a secret key file holds the 32-byte seed as 64 hex
/// characters (owner-only, mode 0600 on Unix); a public key file holds the public key as 64 hex characters.
/// </summary>
public static class KeyFiles
{
    private const int HexLength = OssuaryIdentity.SeedSize * 2;

    /// <summary>Writes <paramref name="identity"/>'s secret seed to a new file; an existing file is never overwritten.</summary>
    /// <exception cref="IOException">The file exists or cannot be written.</exception>
    public static void WriteSecretKey(string path, OssuaryIdentity identity)
    {
        Span<char> hex = stackalloc char[HexLength];
        Span<byte> line = stackalloc byte[HexLength + 1];
        try
        {
            identity.TryFormatSeedHex(hex, out _);
            Encoding.ASCII.GetBytes(hex, line);
            line[HexLength] = (byte)'\n';
            using var file = new FileStream(path, SecretFileOptions());
            file.Write(line);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(MemoryMarshalBytes(hex));
            CryptographicOperations.ZeroMemory(line);
        }
    }

    /// <summary>Reads a secret key file written by <see cref="WriteSecretKey"/> (or by hand: 64 hex characters).</summary>
    /// <exception cref="FormatException">The file does not hold 64 hex characters; the message names the file, not its content.</exception>
    public static OssuaryIdentity ReadSecretKey(string path)
    {
        byte[] content = File.ReadAllBytes(path);
        Span<char> hex = stackalloc char[HexLength + 8];
        try
        {
            // Trailing whitespace (a newline, CRLF) is fine; anything longer is not a key.
            if (content.Length > hex.Length)
            {
                throw new FormatException($"{path}: a secret key file holds 64 hex characters.");
            }

            int count = Encoding.ASCII.GetChars(content, hex);
            try
            {
                return OssuaryIdentity.ParseSeedHex(hex[..count]);
            }
            catch (FormatException)
            {
                throw new FormatException($"{path}: a secret key file holds 64 hex characters.");
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(content);
            CryptographicOperations.ZeroMemory(MemoryMarshalBytes(hex));
        }
    }

    /// <summary>Writes a public key file (one line of 64 hex characters).</summary>
    public static void WritePublicKey(string path, OssuaryPublicKey key) =>
        File.WriteAllText(path, key + "\n");

    /// <summary>Reads a public key file.</summary>
    /// <exception cref="FormatException">The file does not hold 64 hex characters.</exception>
    public static OssuaryPublicKey ReadPublicKey(string path) =>
        OssuaryPublicKey.TryParse(File.ReadAllText(path), out OssuaryPublicKey? key)
            ? key
            : throw new FormatException($"{path}: a public key file holds 64 hex characters.");

    private static FileStreamOptions SecretFileOptions()
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        return options;
    }

    private static Span<byte> MemoryMarshalBytes(Span<char> chars) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(chars);
}
