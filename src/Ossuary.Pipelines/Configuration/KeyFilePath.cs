namespace Ossuary.Pipelines.Configuration;

/// <summary>
/// A key-file setting that no file can have (empty, blank, or holding a NUL character, which JSON's
/// <c>\u0000</c> can put in a setting) is a validation failure naming the setting: the file API's
/// ArgumentException ("Null character in path") named neither the setting nor the options, and went
/// past the options validator, so start-up failed with it instead of the message that says what to fix.
/// A setting that holds a key rather than a file's name is refused too, without repeating it.
/// </summary>
internal static class KeyFilePath
{
    /// <param name="path">The setting's value; null (not set) is fine.</param>
    /// <param name="setting">The setting as a message names it ("OssuaryServerOptions.IdentityKeyFile").</param>
    /// <param name="inConfiguration">Where it is in configuration (" (Ossuary:IdentityKeyFile in configuration)"), or "".</param>
    /// <exception cref="InvalidOperationException"><paramref name="path"/> cannot name a file.</exception>
    public static void Require(string? path, string setting, string inConfiguration)
    {
        if (path is null)
        {
            return;
        }

        if (string.IsNullOrWhiteSpace(path))
        {
            throw new InvalidOperationException($"{setting}{inConfiguration} is empty: name a file, or leave it unset.");
        }

        if (path.Contains('\0', StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{setting}{inConfiguration} holds a NUL character, which no file name can: '{path.Replace("\0", "\\0", StringComparison.Ordinal)}'.");
        }

        // A key pasted where its file's name goes (the secret key's hex in IdentityKeyFile): the file API's
        // "Could not find file '/app/3f2a…'" put the secret into the start-up log and every reload's Error.
        // Said without the value; a file that really has such a name is still read.
        if (LooksLikeAKey(path) && !File.Exists(path))
        {
            throw new InvalidOperationException(
                $"{setting}{inConfiguration} holds 64 hexadecimal characters, the form of a key, not the name of a file (no such file exists): " +
                "write the key into a file readable only by this user and name that file here. The value is not repeated here, since it may be a secret key.");
        }
    }

    /// <summary>A key's own form, as the key types parse it (<see cref="KeyHex"/>); the decoded bytes are wiped, as they may be a secret.</summary>
    private static bool LooksLikeAKey(string path)
    {
        Span<byte> key = stackalloc byte[KeyHex.KeySize];
        bool decoded = KeyHex.TryDecode(path, key);
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(key);
        return decoded;
    }
}
