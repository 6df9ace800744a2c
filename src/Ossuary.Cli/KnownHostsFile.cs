using System.Globalization;
using System.Text;
using Ossuary.Cli.Net;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Cli;

/// <summary>
/// The tool's upkeep of a known-hosts file beyond the library's <see cref="OssuaryKnownHosts"/>:
/// which line says what about a host, removing a host's lines (ssh-keygen -R), and a private
/// <c>~/.ossuary</c>.
/// </summary>
internal static class KnownHostsFile
{
    public static string DefaultPath =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ossuary", "known_hosts");

    /// <summary>What an editor saving UTF-8 may start the file with, and the library's reader skips.</summary>
    private static ReadOnlySpan<byte> Utf8Bom => [0xEF, 0xBB, 0xBF];

    public static OssuaryKnownHosts Load(string path)
    {
        if (StdPaths.IsStdio(path))
        {
            // '-' means stdin or stdout wherever a file is named: never a file called '-'.
            throw new CliException("--known-hosts cannot be '-': the file is read and written; name a file", ExitCodes.BadInput);
        }

        StdPaths.RequireNotDirectory(path, "known-hosts file");
        try
        {
            return OssuaryKnownHosts.Load(path, StderrWarnings.Instance);
        }
        catch (FormatException ex)
        {
            throw new CliException($"known-hosts file is malformed: {ex.Message}", ExitCodes.BadInput);
        }
    }

    /// <summary>
    /// Makes the file's folder if missing, and any missing folder above it, owner-only (0700, as ssh
    /// does for ~/.ssh, and as the library's <see cref="OssuaryKnownHosts.Add"/> does): it says which
    /// servers this user talks to, and others who may write a folder above it can rename another file
    /// in. Made here, before the library's Add, the folders above the last were the umask's (0775 under 002).
    /// </summary>
    public static void EnsureDirectory(string path) => UserOnlyFolders.CreateFor(path);

    /// <summary>The 1-based numbers of the lines that speak of host:port (an exact entry or a host-only one).</summary>
    /// <remarks>
    /// Read as the library reads the file (<see cref="OssuaryKnownHosts.OpenToRead"/>): on Linux and macOS
    /// without a lock, which anyone who may open the file could keep from the tool (a client refusing a
    /// changed key then waited 10 s and said only "being used by another process"); elsewhere waiting out
    /// a writer that holds it (a <c>known-hosts set</c>, another client's <c>--tofu</c>).
    /// </remarks>
    public static IReadOnlyList<int> LinesFor(string path, HostPort server)
    {
        var lines = new List<int>();
        if (!File.Exists(path))
        {
            return lines;
        }

        FileStream file;
        try
        {
            file = OssuaryKnownHosts.OpenToRead(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return lines;
        }

        using var reader = new StreamReader(TrustFileSize.Capped(file, path, "known-hosts"));
        try
        {
            // Lines as the library reads them, each at most its 64 KiB: ReadLine gathered a line however
            // long, and a file that another writer replaced since the check with one endless line (or a
            // sparse file of zeros) filled the memory while the tool was only saying which line held the key.
            foreach ((int number, string line, _) in TrustFileLine.Read(reader, path, "known-hosts"))
            {
                if (Matches(line, server))
                {
                    lines.Add(number);
                }
            }
        }
        catch (FormatException ex)
        {
            throw new CliException($"known-hosts file is malformed: {ex.Message}", ExitCodes.BadInput);
        }

        return lines;
    }

    /// <summary>
    /// Removes every line for host:port (and host-only lines for the host), keeping the old file as
    /// FILE.old; returns the lines removed.
    /// </summary>
    /// <remarks>
    /// The file is held exclusively from the read to the rewrite, the lock the library takes to add a
    /// host (<see cref="OssuaryKnownHosts.Add"/>): a host that a <c>connect --tofu</c> trusts meanwhile
    /// is either in what is read here or appended after, never lost. The new file is written beside
    /// the old and renamed over it (see <see cref="ReplaceWith"/>); a writer waiting for the old one
    /// finds, once it holds it, that the name leads to another file, and takes that one.
    /// </remarks>
    public static int Remove(string path, HostPort server)
    {
        StdPaths.RequireFile(path, "known-hosts file");
        using FileStream file = OpenExclusive(path, FileMode.Open);
        return Rewrite(file, path, server, added: null);
    }

    /// <summary>The lines of the file held, less those for <paramref name="server"/>, plus <paramref name="added"/>; returns the lines removed.</summary>
    /// <remarks>
    /// Each line is decoded only to ask whether it speaks of the server, as the library reads it: past
    /// the UTF-8 byte-order mark that starts a file an editor saved (the mark was taken for part of the
    /// first host, and that line's key stayed trusted through a set or remove). The lines kept are
    /// written back as they were, byte for byte: decoded and encoded again, a comment in another
    /// encoding came back as U+FFFD.
    /// </remarks>
    private static int Rewrite(FileStream file, string path, HostPort server, string? added)
    {
        ClearDeadDrafts(path);
        byte[] content;
        try
        {
            // Read up to the bound of any trust file, not allocated whole at the length it says it has: the file
            // held is the name's file now, which may be another than the one read before (swapped in meanwhile,
            // a log or a sparse file of many GiB named by mistake), and its length was taken at its word.
            content = TrustFileSize.ReadAll(file, path, "known-hosts");
        }
        catch (FormatException ex)
        {
            throw new CliException($"known-hosts file is malformed: {ex.Message}", ExitCodes.BadInput);
        }

        if (OtherEncoding(content) is { } encoding)
        {
            // Split on UTF-8 bytes, no line of it matched, and an appended line read back as garbage.
            throw new CliException($"{path} is in {encoding} (Windows PowerShell 5's '>' writes that); the tool rewrites only UTF-8 known-hosts files: save it as UTF-8 and run this again", ExitCodes.BadInput);
        }

        using var kept = new MemoryStream(content.Length + (added?.Length ?? 0) + 2);
        int removed = 0;
        for (int start = 0; start < content.Length;)
        {
            // A line ends where the library ends it: at LF, CR LF or a CR alone. Split at LF only, a file
            // with CR line ends (an old Mac's) was one line that spoke of the server, and all of it went.
            int lineBreak = content.AsSpan(start).IndexOfAny((byte)'\n', (byte)'\r');
            int stop = lineBreak < 0 ? content.Length : start + lineBreak;
            int end = lineBreak < 0 ? content.Length // the last line's line break ends a line; it does not start one
                : content[stop] == '\r' && stop + 1 < content.Length && content[stop + 1] == '\n' ? stop + 2
                : stop + 1;
            ReadOnlySpan<byte> line = content.AsSpan(start, stop - start);
            if (start == 0 && line.StartsWith(Utf8Bom))
            {
                line = line[Utf8Bom.Length..];
            }

            string text = Encoding.UTF8.GetString(line);
            if (Matches(text, server))
            {
                removed++;
            }
            else if (lineBreak < 0 && IsCutShort(text))
            {
                // What a crash left of a line being appended (connect --tofu): the library leaves it out and
                // its Add cuts it away. Kept, with a line added after it, it was a malformed line in the
                // middle of the file, and every later connect refused the file.
            }
            else
            {
                kept.Write(content, start, end - start);
            }

            start = end;
        }

        if (removed > 0)
        {
            WriteBackup(path, content);
            if (added is not null)
            {
                AppendLine(kept, added);
            }

            ReplaceWith(file, path, kept.ToArray());
        }
        else if (added is not null)
        {
            // Appended (never glued to a last line that lacks its newline), in a whole new file as well:
            // appended in place, a crash in the middle of the line left a cut one, and the file malformed.
            AppendLine(kept, added);
            ReplaceWith(file, path, kept.ToArray());
        }
        else
        {
            return 0;
        }

        return removed;
    }

    /// <summary>The encoding other than UTF-8 that the file's byte-order mark names (as the library's reader takes it), or null.</summary>
    private static string? OtherEncoding(ReadOnlySpan<byte> content) =>
        content.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE, 0x00, 0x00]) || content.StartsWith((ReadOnlySpan<byte>)[0x00, 0x00, 0xFE, 0xFF]) ? "UTF-32"
        : content.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE]) || content.StartsWith((ReadOnlySpan<byte>)[0xFE, 0xFF]) ? "UTF-16"
        : null;

    /// <summary>Writes <paramref name="line"/> and a newline at the end of <paramref name="lines"/>, on a line of its own.</summary>
    private static void AppendLine(MemoryStream lines, string line)
    {
        if (lines.Length > 0 && lines.GetBuffer()[lines.Length - 1] != '\n')
        {
            lines.WriteByte((byte)'\n');
        }

        lines.Write(Encoding.UTF8.GetBytes(line + "\n"));
    }

    /// <summary>
    /// Makes <paramref name="bytes"/> the content of the file held, <paramref name="file"/>: written to
    /// a new file beside it (with its mode), flushed to disk, renamed over it, and the folder flushed,
    /// so that the name leads to the old file or the new one, whole, whenever the tool stops.
    /// </summary>
    /// <remarks>
    /// The file was rewritten in place, the new text over the old and then cut to its length: killed
    /// in between (kill -9, a power cut), it held the new text followed by the old file's last bytes,
    /// which may read as an entry nobody wrote (a comment's tail that names a host and a key). The held
    /// file's lock stays on it until the new file has the name: the library's writers check, once they
    /// hold the file, that the name still leads to it. A link's target is replaced, not the link.
    /// </remarks>
    private static void ReplaceWith(FileStream file, string path, byte[] bytes)
    {
        string folder;
        try
        {
            folder = WholeFileReplacement.Rename(file, path, bytes);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot write '{path}' ({ex.Message}); the file is unchanged", SystemFailure.ExitCode(ex));
        }

        try
        {
            DirectorySync.Sync(folder);
        }
        catch (IOException ex)
        {
            // The new file has the name, but a crash could still take that back.
            throw new CliException($"rewrote '{path}' but could not flush its folder to disk ({ex.Message}); a crash could undo the change");
        }
    }

    /// <summary>
    /// Deletes the drafts that a set or remove killed before renaming them into place left beside the
    /// file (<see cref="ReplaceWith"/>'s FILE.xxxxxxxx.tmp, <see cref="WriteBackup"/>'s FILE.old.xxxxxxxx.tmp):
    /// each crash left one more, forever. Every writer makes its drafts while it holds the file, and
    /// renames them before it lets go, so once this one holds it, a draft of those names is a dead writer's.
    /// Names of any other form are left alone, and so is a draft that cannot be deleted.
    /// </summary>
    private static void ClearDeadDrafts(string path)
    {
        string target = WholeFileReplacement.TargetOf(path);
        string backup = Path.GetFullPath(path + ".old");
        foreach (string stem in new[] { target, backup }.Distinct(StringComparer.Ordinal))
        {
            string folder = Path.GetDirectoryName(stem)!;
            string name = Path.GetFileName(stem);
            try
            {
                foreach (string draft in Directory.EnumerateFiles(folder, name + ".*.tmp"))
                {
                    string tag = Path.GetFileName(draft)[(name.Length + 1)..^".tmp".Length];
                    if (tag.Length == WholeFileReplacement.DraftTagBytes * 2 && tag.All(char.IsAsciiHexDigitLower))
                    {
                        File.Delete(draft);
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Untidy, not a failure: the rewrite itself is what the user asked for.
            }
        }
    }

    /// <summary>FILE.old, written whole (a new file renamed into place, and its folder flushed), with the file's own permissions.</summary>
    private static void WriteBackup(string path, byte[] content)
    {
        string backup = path + ".old";
        string temporary = backup + "." + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(WholeFileReplacement.DraftTagBytes)) + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = File.GetUnixFileMode(path);
        }

        try
        {
            using (var writer = new FileStream(temporary, options))
            {
                writer.Write(content);
                writer.Flush(flushToDisk: true);
            }

            File.Move(temporary, backup, overwrite: true);

            // Its name on disk before the file is replaced: flushed only with the file's folder, after that
            // rename, a crash could keep the new file and lose the backup of the lines it no longer holds
            // (and through a link, whose folder is not the file's, the backup's name was never flushed).
            DirectorySync.Sync(Path.GetDirectoryName(Path.GetFullPath(backup))!);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            File.Delete(temporary);

            // Written before the file is touched: the error must say so, and name the backup, not the draft.
            throw new CliException($"cannot write the backup '{backup}' ({ex.Message}); the file is unchanged", SystemFailure.ExitCode(ex));
        }
    }

    /// <summary>
    /// Opens the file exclusively, waiting as the library does while another writer holds it, and, as
    /// it does, making sure the file locked is still the one the path names (a set that failed to write
    /// a file it had created deletes it before letting go).
    /// </summary>
    /// <remarks>
    /// On Windows the file is shared for deletion only, which keeps other writers out (they ask to read
    /// and write it) yet lets <see cref="ReplaceWith"/> rename the new file over it; the library's
    /// writers wait by opening the name again, so they take the new file.
    /// </remarks>
    /// <remarks>
    /// While another process holds it, the tool says so and waits, up to <see cref="OssuaryKnownHosts.LockWait"/>: it
    /// waited without a word, then failed as bad input (exit 2); the failure is now exit 1 (<see cref="SystemFailure.Held"/>).
    /// </remarks>
    private static FileStream OpenExclusive(string path, FileMode mode) =>
        OssuaryKnownHosts.OpenWithRetry(path, mode, FileAccess.ReadWrite, OperatingSystem.IsWindows() ? FileShare.Delete : FileShare.None,
            held: () => Console.Error.WriteLine(
                $"ossuary: another process holds {path} locked (another ossuary writing it, or any process that may open it: flock); waiting up to {OssuaryKnownHosts.LockWait.TotalSeconds:0} s for it"));

    /// <summary>
    /// Replaces what the file says about host:port with <paramref name="key"/>, in one hold of the
    /// file: removed first and added after, each under its own hold, a client trusting the server on
    /// first use could record its key in between, and the new key was then refused as a changed one.
    /// Returns the lines replaced (host-only lines for the host among them), kept in FILE.old.
    /// </summary>
    public static int Replace(string path, HostPort server, OssuaryPublicKey key)
    {
        // The library's rules for what a line may hold (a host it can read back, a key a server can prove).
        string comment = $"added by ossuary on {DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}";
        try
        {
            OssuaryKnownHosts.Parse(new StringReader("")).Add(server.Host, server.Port, key, comment);
        }
        catch (ArgumentException ex) when (ex.ParamName == "host")
        {
            // The argument's fault, not the tool's: it was "unexpected error: ... (Parameter 'host')", exit 1.
            throw new CliException(
                $"'{server.Host}' cannot be a host in a known-hosts file: its lines are 'host[:port] key', so a host holds no space, bracket, control character or invisible character (a zero-width space, a soft hyphen: it would never match the host it looks like) and does not start with '#'",
                ExitCodes.BadInput);
        }

        EnsureDirectory(path);
        bool existed = File.Exists(path);
        using FileStream file = OpenExclusive(path, FileMode.OpenOrCreate);
        try
        {
            return Rewrite(file, path, server, $"{server} {key} {comment}");
        }
        catch (CliException) when (!existed && file.Length == 0)
        {
            // A file this call created and could not write a line to (a full disk) goes again, so that
            // "the file is unchanged" holds; an empty file would also have made later connects find no key.
            // A writer that opened it meanwhile finds, once it holds it, that the name leads nowhere, and opens it again.
            File.Delete(path);
            throw;
        }
    }

    /// <summary>
    /// True for a last line, unended, that the library does not read and so leaves out (<see cref="OssuaryKnownHosts.Load(string)"/>):
    /// one that does not parse and could be what a crash left of a line (<see cref="OssuaryKnownHosts.CouldBeCut"/>).
    /// Any line that did not parse was dropped, without a backup when nothing was removed: a set on a binary
    /// file named by mistake (a raw key) without a CR or LF byte replaced its bytes with the new line.
    /// </summary>
    private static bool IsCutShort(string line)
    {
        if (line.Length > TrustFileLine.MaxLineLength)
        {
            return false; // the library refuses the file for that: no crash leaves such a line
        }

        try
        {
            _ = OssuaryKnownHosts.Parse(new StringReader(line));
            return false;
        }
        catch (FormatException)
        {
            return OssuaryKnownHosts.CouldBeCut(line);
        }
    }

    private static bool Matches(string line, HostPort server)
    {
        string trimmed = line.Trim();
        if (trimmed.Length == 0 || trimmed[0] == '#')
        {
            return false;
        }

        try
        {
            // The library's parser decides what the line means, so this agrees with its lookups.
            OssuaryKnownHosts one = OssuaryKnownHosts.Parse(new StringReader(line));
            return one.Find(server.Host, server.Port) is not null;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
