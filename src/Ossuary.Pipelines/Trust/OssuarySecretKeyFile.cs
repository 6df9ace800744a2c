using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Ossuary.Pipelines.Trust;

/// <summary>
/// Secret key files in the original's format: the 32-byte Ed25519 seed as 64 hex characters and a
/// newline, owner-only (mode 0600 on Unix). Buffers that held the secret are zeroed after use, and
/// error messages name the file, never its content.
/// </summary>
public static class OssuarySecretKeyFile
{
    private const int HexLength = OssuaryIdentity.SeedSize * 2;

    /// <summary>The key, a byte-order mark and some whitespace: anything longer is not a key file.</summary>
    private const int MaxFileLength = HexLength + 16;

    private static ReadOnlySpan<byte> Utf8Bom => [0xEF, 0xBB, 0xBF];

    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private const UnixFileMode OthersAccess = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>True when users other than the owner may read, write or execute the file (always false on Windows).</summary>
    /// <exception cref="ArgumentException"><paramref name="path"/> is null, empty or holds a NUL character.</exception>
    /// <exception cref="IOException">The file does not exist (<see cref="FileNotFoundException"/>), or its mode cannot be read.</exception>
    public static bool IsAccessibleByOthers(string path) =>
        !OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & OthersAccess) != 0;

    /// <summary>
    /// Writes the identity's seed to a new file, created owner-only; an existing file is never touched.
    /// All or nothing: the key is written and synced to a new file beside <paramref name="path"/>, which
    /// takes the name only once whole, so a write that fails (a full disk) leaves no file under the
    /// name, never an empty or cut key that a retry would find existing and a read would call malformed.
    /// Once it returns, the key and its name are on disk (the folder is synced after the naming): a crash
    /// right after cannot take away a key whose public half has been handed out.
    /// </summary>
    /// <exception cref="IOException">
    /// The file exists or cannot be written; no file is left under the name. Or, its message saying so,
    /// the key file was written but its folder could not be synced, so its name may not survive a crash.
    /// </exception>
    /// <exception cref="ArgumentException"><paramref name="path"/> is null, empty or holds a NUL character, or <paramref name="identity"/> is null; nothing is written.</exception>
    /// <exception cref="ObjectDisposedException"><paramref name="identity"/> has been disposed; nothing is written.</exception>
    public static void Write(string path, OssuaryIdentity identity)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(identity);
        string fullPath = Path.GetFullPath(path);
        if (Path.Exists(fullPath) || new FileInfo(fullPath).LinkTarget is not null)
        {
            throw new IOException($"'{path}' already exists.");
        }

        string draft = DraftBeside(fullPath);
        try
        {
            WriteNew(draft, identity);
            ExclusiveLink.Take(draft, fullPath);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Discard(draft);
            Exception named = NamingTheKeyFile(ex, draft, fullPath);
            if (named.GetType() == typeof(IOException) && !Path.Exists(fullPath) && new FileInfo(fullPath).LinkTarget is null)
            {
                throw new IOException($"{path}: cannot write the secret key file ({named.Message}); no file was made.", ex) { HResult = ex.HResult };
            }

            if (named == ex)
            {
                throw;
            }

            throw named;
        }

        // The draft's bytes were synced before it took the name; the name lives in the folder, which
        // must be synced too, or a crash soon after left the folder without it and the key was lost.
        try
        {
            DirectorySync.Sync(Path.GetDirectoryName(fullPath)!);
        }
        catch (IOException ex)
        {
            throw new IOException($"{path}: wrote the secret key file, but its name may not survive a crash ({ex.Message}).", ex);
        }
    }

    /// <summary>
    /// The key written whole, owner-only and synced, to a new file beside <paramref name="fullPath"/>,
    /// for a caller that gives it the name its own way (<c>ossuary keygen --force</c> renames it over an
    /// old key). Returns the draft's path; on failure no draft is left.
    /// </summary>
    internal static string WriteDraft(string fullPath, OssuaryIdentity identity)
    {
        string draft = DraftBeside(fullPath);
        try
        {
            WriteNew(draft, identity);
            return draft;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Discard(draft);
            Exception named = NamingTheKeyFile(ex, draft, fullPath);
            if (named == ex)
            {
                throw;
            }

            throw named;
        }
    }

    /// <summary>
    /// <paramref name="ex"/> with the key file's name where the system's message names the draft
    /// (".ossuary-key.&lt;guid&gt;.tmp", a file the caller never named: "Could not find a part of the path
    /// '…/.ossuary-key.….tmp'" for a missing folder, the same on a full disk or a folder not theirs);
    /// of the same type and error code, so that callers tell a full disk from a missing folder as before.
    /// <paramref name="ex"/> itself if its message does not name the draft.
    /// </summary>
    private static Exception NamingTheKeyFile(Exception ex, string draft, string fullPath)
    {
        if (!ex.Message.Contains(draft, StringComparison.Ordinal))
        {
            return ex;
        }

        string message = ex.Message.Replace(draft, fullPath, StringComparison.Ordinal);
        Exception? named = ex switch
        {
            DirectoryNotFoundException => new DirectoryNotFoundException(message, ex),
            PathTooLongException => new PathTooLongException(message, ex),
            UnauthorizedAccessException => new UnauthorizedAccessException(message, ex),
            _ when ex.GetType() == typeof(IOException) => new IOException(message, ex),
            _ => null, // a type of its own that cannot be made again: its message, draft and all
        };
        if (named is null)
        {
            return ex;
        }

        named.HResult = ex.HResult;
        return named;
    }

    /// <summary>
    /// A new name for no one (a key file's own name may be near the system's limit already), in the
    /// same folder: a link or rename does not cross file systems.
    /// </summary>
    private static string DraftBeside(string fullPath) => Path.Combine(Path.GetDirectoryName(fullPath)!, $".ossuary-key.{Guid.NewGuid():N}.tmp");

    /// <summary>Creates <paramref name="draft"/> owner-only, writes the key's line to it, and syncs it to disk.</summary>
    private static void WriteNew(string draft, OssuaryIdentity identity)
    {
        Span<char> hex = stackalloc char[HexLength];
        Span<byte> line = stackalloc byte[HexLength + 1];
        try
        {
            identity.TryFormatSeedHex(hex, out _);
            Encoding.ASCII.GetBytes(hex, line);
            line[HexLength] = (byte)'\n';
            // Unbuffered, as Read is: a file stream's buffer is an array of its own, which would keep
            // a copy of the key, never zeroed, after the stream is gone.
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 0 };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = OwnerOnly;
            }

            using var file = new FileStream(draft, options);
            if (!OperatingSystem.IsWindows())
            {
                // The umask may have cleared bits of 0600. Set on the handle, not the name: the name
                // may lead elsewhere by now (a link renamed over it), and that file is not ours to change.
                File.SetUnixFileMode(file.SafeFileHandle, OwnerOnly);
            }

            file.Write(line);

            // On disk before it has the name: a crash must not leave the name with a key's data still unwritten.
            file.Flush(flushToDisk: true);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(hex));
            CryptographicOperations.ZeroMemory(line);
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
            // Never made (no such folder, no permission), or cannot be removed: the failure that
            // brought us here is the one to report.
        }
    }

    /// <summary>
    /// Reads a secret key file (64 hex characters; a UTF-8 byte-order mark and surrounding
    /// whitespace such as a newline are fine). A file longer than any key file is refused without
    /// being read. A file that users other than its owner may access is refused, as ssh refuses
    /// such a key: the secret may already be known to them. So is a file another user owns (anyone
    /// but this process's user and root; not checked on Windows): they know the key.
    /// </summary>
    /// <exception cref="UnauthorizedAccessException">Others may access the file (fix with <c>chmod 600</c>), another user owns it (fix with <c>chown</c>), it is a folder, a device or a socket (a named pipe is read, once something writes to it), or it cannot be opened.</exception>
    /// <exception cref="FormatException">The file does not hold 64 hex characters; the message names the file, not its content.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="ArgumentException"><paramref name="path"/> is null or empty.</exception>
    public static OssuaryIdentity Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);

        // Before the open, which a device may act on (a watchdog starts, a tape rewinds); and before the
        // mode check, which told the operator to chmod 600 /dev/zero (or the terminal /dev/stdin led to).
        RegularFile.Require(path, "secret key", pipeAllowed: true);
        using FileStream file = OpenRead(path);
        return ReadOpened(file, path);
    }

    /// <summary>
    /// As <see cref="Read(string)"/>, for a file that must be a regular one (a configuration reload's, whose
    /// caller checked the name first, <see cref="Integrations.ReloadedKeyFile"/>): opened without waiting for a
    /// writer (O_NONBLOCK, <see cref="UnlockedOpen"/>), the file opened must be regular. A named pipe renamed
    /// over the name after its check was opened for reading, which waited for a writer, for ever if none came,
    /// and the server's reload, and every later change of its options, with it.
    /// </summary>
    /// <exception cref="UnauthorizedAccessException">As <see cref="Read(string)"/>, and the file opened is a named pipe.</exception>
    /// <exception cref="FormatException">The file does not hold 64 hex characters.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    internal static OssuaryIdentity ReadRegular(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        FileStream opened;
        try
        {
            opened = UnlockedOpen.Read(path, "secret key", bufferSize: 0); // unbuffered: a stream's buffer would keep a copy of the key
        }
        catch (UnauthorizedAccessException ex) when (Directory.Exists(path))
        {
            throw TrustFilePermissions.Folder(path, "secret key", ex);
        }

        using FileStream file = opened;
        return ReadOpened(file, path);
    }

    /// <summary>The key of the opened key file <paramref name="file"/>, once its mode and owner are checked.</summary>
    private static OssuaryIdentity ReadOpened(FileStream file, string path)
    {
        // The mode of the file opened, not of whatever the name led to a moment before: a name
        // checked and then opened could be swapped in between (a link renamed over it) for a key
        // others can read, and that key was used.
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(file.SafeFileHandle) & OthersAccess) != 0)
        {
            throw new UnauthorizedAccessException(
                $"{path}: the secret key file is accessible by other users; refusing to use it (fix with: chmod 600 {path}).");
        }

        // Owner-only, but whose? Another user who owns it knows the key, and may open it to anyone.
        FileOwner.Require(file.SafeFileHandle, path, "secret key", "read the key, or let others read it");

        return Read(file, path);
    }

    /// <summary>Opens the key file unbuffered (a stream's buffer would keep a copy of the key), refusing a folder as one.</summary>
    private static FileStream OpenRead(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        }
        catch (UnauthorizedAccessException ex) when (Directory.Exists(path))
        {
            throw TrustFilePermissions.Folder(path, "secret key", ex);
        }
    }

    /// <summary>Reads a secret key in the file format from <paramref name="stream"/> (standard input, say), at most a key file's length of it.</summary>
    /// <param name="stream">The key's bytes; read up to one byte past the longest key file.</param>
    /// <param name="source">Names the stream in error messages.</param>
    /// <exception cref="FormatException">The stream does not hold 64 hex characters; the message names <paramref name="source"/>, not the content.</exception>
    public static OssuaryIdentity Read(Stream stream, string source)
    {
        ArgumentNullException.ThrowIfNull(stream);

        // An array of our own, pinned so the GC leaves no copy, read through Read(byte[], ...): every
        // stream implements that, while Stream's own span overload, which many streams keep, reads
        // through an array from ArrayPool<byte>.Shared and gives it back with the key in it.
        byte[] content = GC.AllocateArray<byte>(MaxFileLength + 1, pinned: true);
        Span<char> hex = stackalloc char[MaxFileLength];
        try
        {
            int length = 0;
            int read;
            while (length < content.Length && (read = stream.Read(content, length, content.Length - length)) > 0)
            {
                length += read;
            }

            if (length > MaxFileLength)
            {
                throw Malformed(source);
            }

            ReadOnlySpan<byte> text = content.AsSpan(0, length);
            if (text.StartsWith(Utf8Bom))
            {
                text = text[Utf8Bom.Length..]; // editors on Windows write one
            }

            int count = Encoding.ASCII.GetChars(text, hex);
            return OssuaryIdentity.ParseSeedHex(hex[..count].Trim());
        }
        catch (FormatException)
        {
            throw Malformed(source);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(content);
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(hex));
        }
    }

    private static FormatException Malformed(string path) => new($"{path}: a secret key file holds 64 hex characters.");
}
