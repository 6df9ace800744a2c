namespace Ossuary.Pipelines.Trust;

/// <summary>
/// An authorized-keys file: one <c>key-hex [comment]</c> per line, the server's allow-list of
/// client keys. Keys are the original's raw 32 bytes in hex, so they move between this library
/// and C or Rust peers unchanged.
/// </summary>
public static class OssuaryAuthorizedKeys
{
    /// <summary>
    /// Reads the keys of <paramref name="path"/>. A file that users other than its owner may write
    /// is refused, as OpenSSH's StrictModes refuses it: any of them could admit their own key. So is
    /// a file another user owns (anyone but this process's user and root): its owner could. The file is
    /// read without an advisory lock (on Linux and macOS), so a lock another user holds on it (<c>flock</c>)
    /// does not keep it from being read.
    /// </summary>
    /// <exception cref="FormatException">A line is malformed, or holds a key no client can prove (the anonymous key, all zeros); the message gives the file and line number. Or the file is longer than 16 MiB (some 150,000 keys), refused once that much is read, never read whole; the message names it.</exception>
    /// <exception cref="UnauthorizedAccessException">Others may write the file (fix with <c>chmod go-w</c>), another user owns it (fix with <c>chown</c>; not checked on Windows), it is a folder, a named pipe or another file that is not a regular one, or it cannot be opened.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="ArgumentException"><paramref name="path"/> is null, empty or holds a NUL character.</exception>
    public static IReadOnlyList<OssuaryPublicKey> Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var reader = new StreamReader(OpenFile(path));
        return Parse(reader, path);
    }

    /// <summary>Opens an authorized-keys file for reading, refusing one others may write, and its reads past <see cref="TrustFileSize.MaxBytes"/>.</summary>
    internal static Stream OpenFile(string path) =>
        TrustFileSize.Capped(TrustFilePermissions.OpenRead(path, "authorized-keys", "admit their own key"), path, "authorized-keys");

    /// <summary>
    /// Reads keys from <paramref name="reader"/>; <paramref name="source"/> names it in error messages. At most
    /// 16 Mi characters (16,777,216, the bound of a file's bytes, see <see cref="Load"/>) are read from it: a
    /// reader that has more is refused once that many are read, not read to its end.
    /// </summary>
    /// <exception cref="FormatException">A line is malformed, longer than any key line (64 KiB characters, refused before more of it is read), or holds a key no client can prove (the anonymous key, all zeros); the message gives the source and line number. Or the reader has more than 16 Mi characters; the message names the source.</exception>
    public static IReadOnlyList<OssuaryPublicKey> Parse(TextReader reader, string source = "authorized keys")
    {
        ArgumentNullException.ThrowIfNull(reader);
        var keys = new List<OssuaryPublicKey>();
        foreach ((int lineNumber, string line, _) in TrustFileLine.Read(reader, source, "authorized-keys"))
        {
            if (TrustFileLine.Split(line, 2) is { } fields)
            {
                keys.Add(TrustFileLine.ParseKey(fields[0], source, lineNumber));
            }
        }

        return keys;
    }

    /// <summary>
    /// Formats one line of an authorized-keys file. The comment's whitespace, line breaks included,
    /// becomes single spaces: text after a line break would otherwise be a line of its own, a key
    /// the file admits (a device name from a form, say, ending in a line break and a key).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="key"/> is one no client can prove (the anonymous key, all zeros): the line would not read back.</exception>
    public static string FormatLine(OssuaryPublicKey key, string? comment = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        TrustFileLine.RequireProvable(key, nameof(key));
        string note = comment is null ? "" : string.Join(' ', comment.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        return note.Length == 0 ? key.ToString() : $"{key} {note}";
    }
}
