using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Trust;

/// <summary>
/// A known-hosts file, ssh style: one <c>host[:port] key-hex [comment]</c> per line. An entry
/// without a port covers every port of the host; IPv6 addresses are written in brackets with a
/// port (<c>[::1]:7000</c>). Lookups are case-insensitive on the host, and every spelling of an
/// address or name finds its entries (<c>[0::1]</c> is <c>::1</c>, <c>example.org.</c> is <c>example.org</c>,
/// <c>bücher.example</c> is <c>xn--bcher-kva.example</c>);
/// a host with an invisible character in it (a zero-width space) is a malformed line. A host may have several
/// lines (the old and the new key during a rotation); any of their keys is trusted.
/// Thread-safe: one set may serve the trust callbacks of many connections at once. A set loaded
/// from a file answers from the file as it is when asked, so a key another process adds to it or
/// removes from it (the tool's <c>known-hosts set</c> or <c>remove</c>, a configuration push) counts
/// from the next check on, as it does for ssh, which reads its file for every connection. Writers
/// replace the file whole (a new file renamed over it), so on Linux and macOS a check reads it without
/// a lock and never waits: a lock any user who may open the file can take stalled every check.
/// </summary>
public sealed class OssuaryKnownHosts
{
    private readonly List<KnownHost> _entries;

    // A client's trust callback consults one set for every connection, and callbacks run at once:
    // Add refills the list while another thread's Find walks it. Trust decisions only, never per frame.
    // A file-backed set's queries read the file instead (see Query): the list serves Add only.
    private readonly Lock _sync = new();

    // Told of a last line cut short (see ReportCutEnd); null for a set loaded without one.
    private readonly ILogger? _logger;

    // The line of the cut end last reported, 0 once a read finds none: reported once, not at each check.
    private int _reportedCutLine;

    private OssuaryKnownHosts(string? path, List<KnownHost> entries, ILogger? logger = null)
    {
        Path = path;
        _entries = entries;
        _logger = logger is null ? null : new FailSafeLogger(logger);
    }

    /// <summary>The file the entries came from and new ones go to; null for an in-memory set.</summary>
    public string? Path { get; }

    /// <summary>How many entries the file holds.</summary>
    /// <exception cref="FormatException">The file, as read now, has a malformed line (the message gives the file and line number), or is longer than 16 MiB, refused once that much is read (the message names the file).</exception>
    /// <exception cref="IOException">The file cannot be read, or (on Windows, where a writer's share mode keeps readers out) another writer held it for longer than <see cref="LockWait"/>.</exception>
    /// <exception cref="UnauthorizedAccessException">Others may write the file (fix with <c>chmod go-w</c>), another user owns it (fix with <c>chown</c>; not checked on Windows), it is not a regular file, or it cannot be opened: it is checked each time it is read, as at <see cref="Load(string)"/>.</exception>
    public int Count => Query(static entries => entries.Count);

    /// <summary>
    /// Reads <paramref name="path"/>; a missing file is an empty set that <see cref="Add"/> creates.
    /// A file that users other than its owner may write is refused: any of them could have any
    /// server trusted under their own key. So is a file another user owns (anyone but this
    /// process's user and root): its owner could. A last line that no line break ends and that does
    /// not parse is left out, here and whenever the file is read: it is what a crash or a power cut
    /// leaves of a line <see cref="Add"/> was appending (which then drops it), and it can only be the
    /// start of an entry, so it trusts nobody; <see cref="Load(string, ILogger)"/> says so to a logger.
    /// Any other malformed line refuses the file.
    /// </summary>
    /// <exception cref="FormatException">A line is malformed, or holds a key no server can prove (the anonymous key, all zeros); the message gives the file and line number. Or the file is longer than 16 MiB (some 150,000 entries), refused once that much is read, never read whole; the message names it.</exception>
    /// <exception cref="UnauthorizedAccessException">Others may write the file (fix with <c>chmod go-w</c>), another user owns it (fix with <c>chown</c>; not checked on Windows), it is a folder, a named pipe or another file that is not a regular one, or it cannot be opened.</exception>
    /// <exception cref="ArgumentException"><paramref name="path"/> is null, empty or holds a NUL character.</exception>
    public static OssuaryKnownHosts Load(string path) => Load(path, null);

    /// <summary>
    /// <see cref="Load(string)"/>, reporting to <paramref name="logger"/> a last line that a crash cut short
    /// and that is left out (event 28, Warning, naming the file and the line): once for this set, and
    /// again if a later read finds another.
    /// </summary>
    /// <inheritdoc cref="Load(string)" path="/exception"/>
    public static OssuaryKnownHosts Load(string path, ILogger? logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var set = new OssuaryKnownHosts(path, [], logger);
        set._entries.AddRange(set.ReadFile(path));
        return set;
    }

    /// <summary>The entries of the file at <paramref name="path"/> as it is now; none if it is missing.</summary>
    private List<KnownHost> ReadFile(string path)
    {
        RequireNotFolder(path);
        if (!File.Exists(path))
        {
            return [];
        }

        try
        {
            using FileStream file = OpenToRead(path);
            return ReadOpened(file, path);
        }
        catch (FileNotFoundException)
        {
            return [];
        }
    }

    /// <summary><see cref="ReadFile"/> that, where it waits for a writer (Windows), waits without holding a thread (<see cref="CheckAsync"/>).</summary>
    private ValueTask<List<KnownHost>> ReadFileAsync(string path, CancellationToken cancellationToken) =>
        ReadersWait ? ReadWaitingFileAsync(path, cancellationToken) : ValueTask.FromResult(ReadFile(path));

    private async ValueTask<List<KnownHost>> ReadWaitingFileAsync(string path, CancellationToken cancellationToken)
    {
        RequireNotFolder(path);
        if (!File.Exists(path))
        {
            return [];
        }

        try
        {
            using FileStream file = await OpenWithRetryAsync(path, FileMode.Open, FileAccess.Read, FileShare.Read, cancellationToken).ConfigureAwait(false);
            return ReadOpened(file, path);
        }
        catch (FileNotFoundException)
        {
            return [];
        }
    }

    /// <summary>
    /// True where a reader must wait for a writer: on Windows a writer's share mode keeps readers out
    /// (and a reader's keeps the writer's rename out), and on systems other than Linux and macOS .NET's
    /// open takes the lock that <see cref="UnlockedOpen"/> avoids.
    /// </summary>
    private static bool ReadersWait => !OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS();

    /// <summary>
    /// Opens the file to read it. On Linux and macOS without an advisory lock: writers replace the file
    /// whole (<see cref="WholeFileReplacement"/>), so a reader sees the old file or the new one, and the
    /// shared lock readers took could be kept from them by anyone who may open the file (<c>flock -x</c>
    /// as another user, on a file in /etc/ossuary or a shared mount): every check waited <see cref="LockWait"/>
    /// and failed, so the client could reach no server. Elsewhere it waits out a writer. The one
    /// implementation for this class and the tool, which reads the file again to name a changed key's lines.
    /// </summary>
    internal static FileStream OpenToRead(string path) =>
        ReadersWait ? OpenWithRetry(path, FileMode.Open, FileAccess.Read, FileShare.Read) : UnlockedOpen.Read(path, "known-hosts");

    /// <summary>How a writer holds the file: exclusively, but on Windows open to the rename of the new file over it.</summary>
    private static FileShare WriterShare => OperatingSystem.IsWindows() ? FileShare.Delete : FileShare.None;

    /// <summary>The entries of the file opened, refused if others may write it or if it is longer than <see cref="TrustFileSize.MaxBytes"/>. Read at once: a trust file is a few lines.</summary>
    private List<KnownHost> ReadOpened(FileStream file, string path)
    {
        RequireOwnerOnlyWrites(file, path);
        using var reader = new StreamReader(TrustFileSize.Capped(file, path, "known-hosts"));
        List<KnownHost> entries = ParseEntries(reader, path, forgiveCutEnd: true, out int cutLine);
        ReportCutEnd(cutLine);
        return entries;
    }

    /// <summary>
    /// Tells the logger of a last line cut short that is left out (<paramref name="cutLine"/>, 0 for none):
    /// left out without a word, a file a crash damaged, and a key a user meant to record that is not
    /// there, went unnoticed. Once for each such line, not at every check of every connection.
    /// </summary>
    private void ReportCutEnd(int cutLine)
    {
        if (Interlocked.Exchange(ref _reportedCutLine, cutLine) != cutLine && cutLine > 0 && _logger is { } logger)
        {
            OssuaryLog.KnownHostsLastLineCut(logger, Path!, cutLine);
        }
    }

    /// <summary>
    /// Runs <paramref name="query"/> over the entries: a file-backed set's as the file holds them now,
    /// read for each question (trust decisions, once a handshake), since another process may have
    /// changed it; an in-memory set's under the lock.
    /// </summary>
    private T Query<T>(Func<List<KnownHost>, T> query)
    {
        if (Path is { } path)
        {
            return query(ReadFile(path));
        }

        lock (_sync)
        {
            return query(_entries);
        }
    }

    /// <summary>
    /// Reads entries from <paramref name="reader"/> into an in-memory set. At most 16 Mi characters (16,777,216,
    /// the bound of a file's bytes, see <see cref="Load(string)"/>) are read from it: a reader that has more is
    /// refused once that many are read, not read to its end.
    /// </summary>
    /// <exception cref="FormatException">A line is malformed, longer than any key line (64 KiB characters, refused before more of it is read), or holds a key no server can prove (the anonymous key, all zeros); the message gives the source and line number. Or the reader has more than 16 Mi characters; the message names the source.</exception>
    public static OssuaryKnownHosts Parse(TextReader reader, string source = "known hosts") =>
        new(null, ParseEntries(reader, source, forgiveCutEnd: false, out _));

    /// <summary>
    /// Compares <paramref name="key"/> with what the file says about <paramref name="host"/>:<paramref name="port"/>:
    /// trusted if any of the keys recorded for it is <paramref name="key"/> (a host may have several,
    /// the old and the new during a key rotation, as in ssh), changed if others are recorded.
    /// Exact host:port entries win over host-only ones. On Linux and macOS this never waits for a writer,
    /// which replaces the file whole; on Windows, while another writer holds the file, this waits on the
    /// calling thread (up to <see cref="LockWait"/>), so a trust callback should call <see cref="CheckAsync"/>.
    /// </summary>
    /// <inheritdoc cref="Count" path="/exception"/>
    /// <exception cref="ArgumentException"><paramref name="host"/> is null or empty, or <paramref name="key"/> is null.</exception>
    public KnownHostStatus Check(string host, int port, OssuaryPublicKey key)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        ArgumentNullException.ThrowIfNull(key);
        string name = NormalizeHost(host);
        return Query(entries => StatusIn(entries, name, port, key));
    }

    /// <summary>
    /// <see cref="Check"/> for a trust callback (<see cref="Transport.OssuaryClientOptions.TrustServer"/>,
    /// <see cref="Transport.OssuaryClientOptions.TrustServerAtEndPoint"/>). On Linux and macOS it reads
    /// the file at once, whoever holds it (writers replace it whole), and completes synchronously. On
    /// Windows, while another writer holds the file (an <see cref="Add"/> in this process or another, the
    /// tool's <c>known-hosts set</c> or <c>remove</c>), it waits without holding a thread, and its wait
    /// ends with <paramref name="cancellationToken"/> (the handshake's), where <see cref="Check"/> sleeps
    /// on the calling thread, up to <see cref="LockWait"/>.
    /// </summary>
    /// <inheritdoc cref="Count" path="/exception"/>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while the file was held (Windows).</exception>
    /// <exception cref="ArgumentException"><paramref name="host"/> is null or empty, or <paramref name="key"/> is null (thrown by the call, not through the task).</exception>
    public ValueTask<KnownHostStatus> CheckAsync(string host, int port, OssuaryPublicKey key, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        ArgumentNullException.ThrowIfNull(key);
        string name = NormalizeHost(host);
        if (Path is not { } path)
        {
            lock (_sync)
            {
                return ValueTask.FromResult(StatusIn(_entries, name, port, key));
            }
        }

        return CheckFileAsync(path, name, port, key, cancellationToken);
    }

    private async ValueTask<KnownHostStatus> CheckFileAsync(string path, string name, int port, OssuaryPublicKey key, CancellationToken cancellationToken) =>
        StatusIn(await ReadFileAsync(path, cancellationToken).ConfigureAwait(false), name, port, key);

    /// <summary>The key recorded for the host and port (an exact host:port entry wins over a host-only one; of several, the first); null if none.</summary>
    /// <inheritdoc cref="Count" path="/exception"/>
    /// <exception cref="ArgumentException"><paramref name="host"/> is null or empty.</exception>
    public OssuaryPublicKey? Find(string host, int port)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        string name = NormalizeHost(host);
        return Query(entries => FindIn(entries, name, port));
    }

    /// <summary>
    /// Trusted if any entry of the kind that applies (exact host:port entries if there are any, host-only
    /// ones otherwise) holds <paramref name="key"/>: a rotation lists the old and the new key side by side,
    /// and taking only the first made the new one look like an impostor's.
    /// </summary>
    private static KnownHostStatus StatusIn(List<KnownHost> entries, string name, int port, OssuaryPublicKey key)
    {
        bool exactFound = false;
        bool exactMatch = false;
        bool hostOnlyFound = false;
        bool hostOnlyMatch = false;
        foreach (KnownHost entry in entries)
        {
            if (!string.Equals(entry.Host, name, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (entry.Port == port)
            {
                exactFound = true;
                exactMatch |= entry.Key == key;
            }
            else if (entry.Port is null)
            {
                hostOnlyFound = true;
                hostOnlyMatch |= entry.Key == key;
            }
        }

        return exactFound ? (exactMatch ? KnownHostStatus.Trusted : KnownHostStatus.Changed)
            : hostOnlyFound ? (hostOnlyMatch ? KnownHostStatus.Trusted : KnownHostStatus.Changed)
            : KnownHostStatus.Unknown;
    }

    private static OssuaryPublicKey? FindIn(List<KnownHost> entries, string name, int port)
    {
        KnownHost? hostOnly = null;
        foreach (KnownHost entry in entries)
        {
            if (!string.Equals(entry.Host, name, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (entry.Port == port)
            {
                return entry.Key;
            }

            if (entry.Port is null)
            {
                hostOnly ??= entry;
            }
        }

        return hostOnly?.Key;
    }

    /// <summary>
    /// Records a key for host:port as a new last line of the file (created if missing, with any missing
    /// folders above it, those for this user only: 0700), in the file's encoding: UTF-8 unless a
    /// byte-order mark says UTF-16 or UTF-32, as <see cref="Load(string)"/> reads it. The file is
    /// re-read while held exclusively, and this set refreshed from it, so two processes that trust
    /// a server on first use at once record one key: the second finds the first's entry. The file is
    /// not changed in place: its lines and the new one are written to a new file beside it (with its
    /// mode), flushed to disk and renamed over it, so its folder must be writable (through a link, the
    /// target's), and a reader sees the old file or the new one, whole, without taking a lock. Once held,
    /// the file is checked to be the one the path still names (on Linux and macOS): another writer
    /// (the tool's <c>known-hosts set</c> or <c>remove</c>) may have renamed a new file over it or
    /// deleted it meanwhile, and the key then goes to the file that has the name. A last line cut
    /// short by a crash (see <see cref="Load(string)"/>) is cut away, and the new line takes its place.
    /// While another writer holds the file, this waits on the calling thread (up to <see cref="LockWait"/>);
    /// a trust callback should call <see cref="AddAsync"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The host or port cannot be written as an entry that reads back (an empty host, whitespace or brackets in it, a port outside 1-65535), or the key is one no server can prove (the anonymous key, all zeros).</exception>
    /// <exception cref="InvalidOperationException">The file already holds a different key for the host, perhaps written a moment ago by another process (<see cref="Check"/> now reports <see cref="KnownHostStatus.Changed"/> and <see cref="Find"/> names that key); the message names the file and the lines that hold it. A changed key is never overwritten silently.</exception>
    /// <exception cref="IOException">Another writer held the file for longer than <see cref="LockWait"/>, or the new file cannot be written (the file is then as it was).</exception>
    /// <exception cref="FormatException">The file, as re-read, has a malformed line, or is longer than 16 MiB; nothing was written.</exception>
    /// <exception cref="UnauthorizedAccessException">Others may write the file (fix with <c>chmod go-w</c>), another user owns it (fix with <c>chown</c>; not checked on Windows), it is a folder, a named pipe or another file that is not a regular one, it cannot be opened, or its folder cannot be written.</exception>
    public void Add(string host, int port, OssuaryPublicKey key, string? comment = null)
    {
        if (AddedHost(host, port, key) is not { } name)
        {
            return; // an in-memory set: recorded
        }

        RequireNotFolder(Path!);
        UserOnlyFolders.CreateFor(Path!);

        // Held exclusively from the re-read to the append: what was checked is what is appended to.
        using FileStream file = OpenWithRetry(Path!, FileMode.OpenOrCreate, FileAccess.ReadWrite, WriterShare);
        AppendTo(file, Path!, name, port, key, comment);
    }

    /// <summary>
    /// <see cref="Add"/> for a trust callback that trusts on first use: while another writer holds the
    /// file (an <see cref="Add"/> in this process or another, the tool's <c>known-hosts set</c> or
    /// <c>remove</c>), it waits without holding a thread, and its wait ends with
    /// <paramref name="cancellationToken"/> (the handshake's); once it holds the file, it records the key
    /// as <see cref="Add"/> does. <see cref="Add"/> waits by sleeping on the calling thread, up to
    /// <see cref="LockWait"/>: called from the callbacks of many connections at once, it took a
    /// thread-pool thread for each.
    /// </summary>
    /// <inheritdoc cref="Add" path="/exception"/>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while the file was held; nothing was written.</exception>
    public ValueTask AddAsync(string host, int port, OssuaryPublicKey key, string? comment = null, CancellationToken cancellationToken = default)
    {
        if (AddedHost(host, port, key) is not { } name)
        {
            return ValueTask.CompletedTask; // an in-memory set: recorded
        }

        RequireNotFolder(Path!);
        UserOnlyFolders.CreateFor(Path!);
        return AddToFileAsync(Path!, name, port, key, comment, cancellationToken);
    }

    private async ValueTask AddToFileAsync(string path, string name, int port, OssuaryPublicKey key, string? comment, CancellationToken cancellationToken)
    {
        using FileStream file = await OpenWithRetryAsync(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, WriterShare, cancellationToken).ConfigureAwait(false);
        AppendTo(file, path, name, port, key, comment);
    }

    /// <summary>
    /// Checks the arguments of <see cref="Add"/> and <see cref="AddAsync"/>; records the entry in an
    /// in-memory set and returns null, or returns the host as the file's entry spells it.
    /// </summary>
    private string? AddedHost(string host, int port, OssuaryPublicKey key)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        ArgumentNullException.ThrowIfNull(key);
        TrustFileLine.RequireProvable(key, nameof(key));
        string name = NormalizeHost(host);

        // As given: IDNA drops some invisible characters (a soft hyphen), and a line read back keeps them.
        if (name.Length == 0 || name[0] == '#' || Invisible(host.Trim()) is not null || name.Any(c => char.IsWhiteSpace(c) || c is '[' or ']'))
        {
            throw new ArgumentException($"'{host}' cannot be a host in a known-hosts file.", nameof(host));
        }

        if (Path is null)
        {
            lock (_sync)
            {
                RecordUnlessKnown(name, port, key);
            }

            return null;
        }

        return name;
    }

    /// <summary>
    /// The file-backed part of <see cref="Add"/>, on <paramref name="file"/>, held exclusively: its content
    /// and the new line become a new file renamed over it (<see cref="WholeFileReplacement"/>). Appended in
    /// place, a check reading meanwhile, which takes no lock, could meet part of the line.
    /// </summary>
    private void AppendTo(FileStream file, string path, string name, int port, OssuaryPublicKey key, string? comment)
    {
        RequireOwnerOnlyWrites(file, path);
        byte[] held = TrustFileSize.ReadAll(file, path, "known-hosts");

        List<KnownHost> current;
        Encoding encoding;
        int cutLine;
        bool glued;
        using (var reader = new StreamReader(new MemoryStream(held)))
        {
            string text = reader.ReadToEnd();
            current = ParseEntries(new StringReader(text), path, forgiveCutEnd: true, out cutLine);

            // The line goes in the file's own encoding, as its byte-order mark says (UTF-16 from Windows
            // PowerShell 5's `>`): in UTF-8 it read back as a line of garbage, and the file as malformed.
            encoding = reader.CurrentEncoding;

            // One line whatever the comment holds, and never glued to a last line that lacks its newline.
            glued = cutLine == 0 && text.Length > 0 && text[^1] != '\n';
        }

        ReportCutEnd(cutLine);
        bool cutEnd = cutLine > 0;

        lock (_sync)
        {
            _entries.Clear();
            _entries.AddRange(current);
            if (!RecordUnlessKnown(name, port, key))
            {
                return; // already trusted, perhaps recorded by another writer a moment ago
            }
        }

        string? note = comment is null ? null : string.Join(' ', comment.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        string line = FormatHost(name, port) + " " + key + (string.IsNullOrEmpty(note) ? "" : " " + note);

        // What a crash left of a line (see ParseEntries) goes: after a line break the line would be in
        // the middle of the file, where it makes the whole file malformed.
        int kept = cutEnd ? (int)CutLineStart(held, encoding) : held.Length;
        byte[] added = encoding.GetBytes((glued ? Environment.NewLine : "") + line + Environment.NewLine);
        try
        {
            WholeFileReplacement.Replace(file, path, [.. held.AsSpan(0, kept), .. added]);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            lock (_sync)
            {
                _entries.RemoveAt(_entries.Count - 1);
            }

            throw;
        }
    }

    /// <summary>How long <see cref="Add"/> waits for another writer to release the file; so do, on Windows only, <see cref="Load(string)"/> and the queries (<see cref="Check"/>, <see cref="CheckAsync"/>).</summary>
    public static TimeSpan LockWait { get; } = TimeSpan.FromSeconds(10);

    /// <summary>Adds the entry to this set unless the key is already trusted there; throws if the host has a different key. Call under the lock.</summary>
    /// <returns>True if the entry was added.</returns>
    private bool RecordUnlessKnown(string name, int port, OssuaryPublicKey key)
    {
        switch (StatusIn(_entries, name, port, key))
        {
            case KnownHostStatus.Unknown:
                _entries.Add(new KnownHost(name, port, key));
                return true;
            case KnownHostStatus.Trusted:
                return false;
        }

        // The file and the lines to remove, as the tool's refusal names them: a trust callback's caller
        // learns of a changed key only from this message.
        bool exact = _entries.Exists(entry => Matches(entry, name) && entry.Port == port);
        int[] lines = [.. _entries.Where(entry => Matches(entry, name) && (exact ? entry.Port == port : entry.Port is null) && entry.Line > 0).Select(entry => entry.Line)];
        string where = Path is null ? "known-hosts set" : lines.Length == 0 ? $"known-hosts file {Path}" : $"known-hosts file ({string.Join(", ", lines.Select(line => $"{Path}:{line}"))})";
        throw new InvalidOperationException(
            $"The {where} already holds a different key for {FormatHost(name, port)}; remove {(lines.Length > 1 ? "those lines" : "that line")} first.");
    }

    private static bool Matches(KnownHost entry, string name) => string.Equals(entry.Host, name, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Opens the file, waiting while another process (or another set in this one) holds it, by
    /// sleeping: for synchronous callers (<see cref="Add"/>; on Windows <see cref="Load(string)"/> and <see cref="Check"/>).
    /// The one implementation for this class and the tool's <c>known-hosts set</c> and <c>remove</c>
    /// (through InternalsVisibleTo), which replace the file by renaming a new one over it. See
    /// <see cref="HeldFileOpening"/> for why the file locked is checked to be the one the name leads to.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="mode">How to open it.</param>
    /// <param name="access">What for.</param>
    /// <param name="share">What other opens it lets through.</param>
    /// <param name="held">Called once, when an attempt first finds the file held by another writer: the tool says that it waits, and for how long.</param>
    internal static FileStream OpenWithRetry(string path, FileMode mode, FileAccess access, FileShare share, Action? held = null)
    {
        var opening = new HeldFileOpening(path, mode, access, share);
        bool told = false;
        while (true)
        {
            if (opening.TryOpen(out TimeSpan pause) is { } file)
            {
                return file;
            }

            if (opening.Held && !told)
            {
                told = true;
                held?.Invoke();
            }

            Thread.Sleep(pause);
        }
    }

    /// <summary><see cref="OpenWithRetry"/> that waits without holding a thread, and ends its wait with <paramref name="cancellationToken"/>.</summary>
    internal static async ValueTask<FileStream> OpenWithRetryAsync(string path, FileMode mode, FileAccess access, FileShare share, CancellationToken cancellationToken)
    {
        var opening = new HeldFileOpening(path, mode, access, share);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (opening.TryOpen(out TimeSpan pause) is { } file)
            {
                return file;
            }

            await Task.Delay(pause, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A folder is no file, but not a missing one either: taken for one, every server was unknown.
    /// Nor is a named pipe, whose open waited for a writer (<see cref="RegularFile"/>).
    /// </summary>
    private static void RequireNotFolder(string path)
    {
        if (Directory.Exists(path))
        {
            throw TrustFilePermissions.Folder(path, "known-hosts");
        }

        RegularFile.Require(path, "known-hosts");
        TrustFilePermissions.TypeChecked?.Invoke(path);
    }

    private static void RequireOwnerOnlyWrites(FileStream file, string path) =>
        TrustFilePermissions.Require(file, path, "known-hosts", "have any server trusted under their own key");

    /// <summary>The entries of <paramref name="reader"/>'s lines.</summary>
    /// <param name="reader">The lines.</param>
    /// <param name="source">Names them in error messages.</param>
    /// <param name="forgiveCutEnd">
    /// Leave out a last line that no line break ends and that does not parse, rather than refuse the
    /// whole file: it is what a crash or a power cut leaves of a line <see cref="Add"/> was appending,
    /// and one such crash made every later check of the file fail. Such a line can only be the start of
    /// an entry (a prefix with the host and the whole key reads as that entry), so leaving it out
    /// trusts nobody it would not have. Only a line that could be such a start (<see cref="CouldBeCut"/>).
    /// For files; text handed to <see cref="Parse"/> is whole.
    /// </param>
    /// <param name="cutLine">The number of such a line when it was left out; 0 otherwise.</param>
    private static List<KnownHost> ParseEntries(TextReader reader, string source, bool forgiveCutEnd, out int cutLine)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var entries = new List<KnownHost>();
        cutLine = 0;
        foreach ((int lineNumber, string line, bool ended) in TrustFileLine.Read(reader, source, "known-hosts"))
        {
            try
            {
                if (ParseEntry(line, source, lineNumber) is { } entry)
                {
                    entries.Add(entry);
                }
            }
            catch (FormatException) when (forgiveCutEnd && !ended && CouldBeCut(line))
            {
                cutLine = lineNumber;
            }
        }

        return entries;
    }

    /// <summary>
    /// True if <paramref name="line"/>, a last line without a line break that does not parse, could be what
    /// a crash left of a line <see cref="Add"/> was writing: the start of <c>host[:port] key</c> cut before
    /// the key's end (with the whole key it parses), perhaps in the middle of a character, or zeros where
    /// a file system kept the length but not the bytes. Any line was forgiven: a binary file named by
    /// mistake (a raw key) without a CR or LF byte was an empty set, and Add cut it away, the file's
    /// bytes with it. Bytes no text has (control characters, undecodable ones) are no such start.
    /// The one rule for this class and the tool's <c>known-hosts set</c> and <c>remove</c>, which drop such a line too.
    /// </summary>
    internal static bool CouldBeCut(string line)
    {
        ReadOnlySpan<char> text = line.AsSpan().TrimStart('\uFEFF');
        if (!text.IsEmpty && !text.ContainsAnyExcept('\0'))
        {
            return true;
        }

        if (text.EndsWith("\uFFFD"))
        {
            text = text[..^1]; // half a character: the replacement its bytes decode to
        }

        foreach (char c in text)
        {
            if (char.IsControl(c) || c == '\uFFFD')
            {
                return false;
            }
        }

        int space = text.IndexOf(' ');
        if (space < 0)
        {
            return true; // in the host
        }

        ReadOnlySpan<char> key = text[(space + 1)..];
        foreach (char c in key)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return false;
            }
        }

        return key.Length < 64;
    }

    /// <summary>The entry a line holds; null for a blank or comment line.</summary>
    private static KnownHost? ParseEntry(string line, string source, int lineNumber)
    {
        if (TrustFileLine.Split(line, 3) is not { } fields)
        {
            return null;
        }

        if (fields.Length < 2)
        {
            throw TrustFileLine.Malformed(source, lineNumber, "expected 'host[:port] key-hex [comment]'");
        }

        (string host, int? port) = ParseHost(fields[0], source, lineNumber);
        return new KnownHost(host, port, TrustFileLine.ParseKey(fields[1], source, lineNumber), lineNumber);
    }

    /// <summary>
    /// Where a cut last line of <paramref name="held"/> starts: just past the last line break (a whole
    /// code unit of <paramref name="encoding"/>), or past the byte-order mark if there is none. Found in
    /// the bytes, not the decoded text: a byte another encoding wrote (a Latin-1 comment) decodes to
    /// U+FFFD, whose UTF-8 is longer, and a crash may leave half a character.
    /// </summary>
    private static long CutLineStart(byte[] held, Encoding encoding)
    {
        int unit = encoding switch
        {
            UTF32Encoding => 4,
            UnicodeEncoding => 2,
            _ => 1,
        };
        bool bigEndian = encoding.CodePage is 1201 or 12001; // UTF-16BE, UTF-32BE
        ReadOnlySpan<byte> mark = encoding.GetPreamble();
        int first = held.AsSpan().StartsWith(mark) ? mark.Length : 0;
        for (int at = first + ((((held.Length - first) / unit) - 1) * unit); at >= first; at -= unit)
        {
            uint value = 0;
            for (int i = 0; i < unit; i++)
            {
                value |= (uint)held[at + (bigEndian ? unit - 1 - i : i)] << (8 * i);
            }

            if (value is '\n' or '\r')
            {
                return at + unit;
            }
        }

        return first;
    }

    private static (string Host, int? Port) ParseHost(string field, string source, int lineNumber)
    {
        string host = field;
        string? port = null;
        if (field.StartsWith('['))
        {
            int close = field.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || (close + 1 < field.Length && field[close + 1] != ':'))
            {
                throw TrustFileLine.Malformed(source, lineNumber, "a bracketed address must look like [::1]:7000");
            }

            host = field[1..close];
            port = close + 1 < field.Length ? field[(close + 2)..] : null;
        }
        else if (field.Count(c => c == ':') == 1)
        {
            int colon = field.IndexOf(':', StringComparison.Ordinal);
            host = field[..colon];
            port = field[(colon + 1)..];
        }

        if (host.Length == 0)
        {
            throw TrustFileLine.Malformed(source, lineNumber, "the host is empty");
        }

        // It would never match the host it looks like, and a check would answer unknown instead of changed.
        if (Invisible(host) is { } invisible)
        {
            throw TrustFileLine.Malformed(source, lineNumber, $"the host holds U+{(int)invisible:X4}, an invisible character no host name has");
        }

        host = NormalizeHost(host);

        if (port is null)
        {
            return (host, null);
        }

        return int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out int number) && number is > 0 and <= 65535
            ? (host, number)
            : throw TrustFileLine.Malformed(source, lineNumber, $"'{port}' is not a port number");
    }

    /// <summary>
    /// The one spelling of a host that entries and questions are compared in: without brackets, an IP
    /// address as <see cref="IPAddress.ToString"/> writes it (<c>[0::1]</c> and <c>0:0:0:0:0:0:0:1</c> are
    /// <c>::1</c>, an IPv4-mapped <c>::ffff:10.0.0.1</c> is <c>10.0.0.1</c>), a name without its root dot (<c>example.org.</c> is <c>example.org</c>)
    /// and in its ASCII form (<c>bücher.example</c> is <c>xn--bcher-kva.example</c>). Names still
    /// compare case-insensitively. Compared as spelled, a server asked for under one spelling of a host
    /// the file records under another was unknown, and trust on first use recorded an impostor's key
    /// beside the real one instead of refusing it as changed.
    /// </summary>
    private static string NormalizeHost(string host)
    {
        string name = host.Trim().TrimStart('[').TrimEnd(']');
        if (name.Length > 1 && name[^1] == '.' && name[^2] != '.')
        {
            name = name[..^1];
        }

        if (!IPAddress.TryParse(name, out IPAddress? address))
        {
            return AsciiName(name);
        }

        // A dual-mode socket (one Socket for IPv4 and IPv6) names an IPv4 peer ::ffff:a.b.c.d, and that is
        // the end point a TrustServerAtEndPoint callback is given: the same host as a.b.c.d.
        return (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();
    }

    /// <summary>
    /// An internationalized name in its ASCII form (IDNA: <c>bücher.example</c> is <c>xn--bcher-kva.example</c>),
    /// the one DNS knows, so both spellings are one host; an ASCII name, or one IDNA refuses, as it is.
    /// </summary>
    private static string AsciiName(string name)
    {
        if (Ascii.IsValid(name))
        {
            return name;
        }

        try
        {
            // Lower case first: with invariant globalization (this package's default) IdnMapping folds no
            // case outside ASCII, and BÜCHER.example became another name than bücher.example. A new
            // mapping each time: its instances are not thread-safe.
            return new IdnMapping().GetAscii(name.ToLowerInvariant());
        }
        catch (ArgumentException)
        {
            return name;
        }
    }

    /// <summary>The first character of <paramref name="host"/> that no host name has and that shows as nothing (a control or format character, a zero-width space, a soft hyphen); null if none.</summary>
    private static char? Invisible(string host)
    {
        foreach (char c in host)
        {
            if (char.IsControl(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.Format)
            {
                return c;
            }
        }

        return null;
    }

    private static string FormatHost(string host, int port) =>
        host.Contains(':', StringComparison.Ordinal) ? $"[{host}]:{port}" : $"{host}:{port}";

    /// <summary>An entry, with the number of the line it was read from (0 for one recorded in memory only).</summary>
    private sealed record KnownHost(string Host, int? Port, OssuaryPublicKey Key, int Line = 0);
}
