using Microsoft.Extensions.Logging;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// Re-reads an authorized-keys file whenever it is written, replaced (an editor's or a deployment
/// tool's rename into place) or deleted, and hands the keys on. The directory is watched, not the
/// file, so that a file replaced by rename keeps being followed; and every name in it, not only the
/// file's, because a file reached through a link changes when another name does (Kubernetes mounts
/// <c>keys -&gt; ..data/keys</c> and swaps <c>..data</c>). Changes to other names reload only when
/// the file's content differs from what was last read, so a busy directory does not flood the log.
/// The folder's own name is watched in its parent too: a folder swapped in by rename (mv keys keys.old;
/// mv keys.new keys) changes no name inside the watched folder, whose watch follows the old folder away.
/// A file that is itself a link is also read again every <see cref="LinkPollInterval"/>: its target may
/// live in another folder (<c>/etc/ossuary/keys -&gt; /srv/config/keys</c>), where an edit raises no
/// event in the folder watched here. So is a file whose path leads through a linked folder (a release
/// layout, <c>current -&gt; releases/v1</c>): the link swapped by renaming a new one over it (<c>ln -sfn</c>)
/// raises no event anywhere watched, since the folder watch follows the old target and the parent's
/// watch of folder names does not see a link, which is no folder, renamed.
/// A watch that cannot be made (the system's inotify limits) is said at Error (event 29), and the file
/// is read every second in its place.
/// </summary>
internal sealed class AuthorizedKeysFileWatcher : IDisposable
{
    private readonly string _path;
    private readonly string _fullPath;
    private readonly Action<string, IReadOnlyList<OssuaryPublicKey>> _changed;
    private readonly ILogger _logger;
    private readonly string _directory;
    private readonly Lock _reloading = new();
    private readonly Timer _missingFilePoll;
    private readonly Timer _linkPoll;
    private readonly Func<string, FileSystemWatcher> _newWatcher;
    private Watches _watcher;
    private bool _nameUnwatched; // the folder's name in its parent could not be watched: the link poll reads the file in its place
    private bool _unwatched; // the folder could not be watched again since the file came back: the missing-file poll reads it
    private Reading _lastRead;
    private bool _disposed;

    /// <summary>How often a deleted file is looked for again: its folder's watch may have died with the folder.</summary>
    internal static TimeSpan MissingFilePollInterval { get; } = TimeSpan.FromSeconds(1);

    /// <summary>How often a file that is a link is read again: what it leads to may change where no watch of ours looks.</summary>
    internal static TimeSpan LinkPollInterval { get; } = TimeSpan.FromSeconds(1);

    /// <param name="path">The authorized-keys file.</param>
    /// <param name="changed">Given the file's keys whenever they may have changed.</param>
    /// <param name="logger">Where reloads and failures are told.</param>
    /// <param name="newWatcher">Makes a watcher of a folder; a test's seam, to make a watch fail as an exhausted inotify limit does.</param>
    public AuthorizedKeysFileWatcher(string path, Action<string, IReadOnlyList<OssuaryPublicKey>> changed, ILogger logger, Func<string, FileSystemWatcher>? newWatcher = null)
    {
        _path = path;
        _newWatcher = newWatcher ?? (folder => new FileSystemWatcher(folder));
        _fullPath = Path.GetFullPath(path);
        _changed = changed;
        _logger = logger;
        _directory = Path.GetDirectoryName(_fullPath)!;
        _missingFilePoll = new Timer(_ => OnMissingFilePoll());
        _linkPoll = new Timer(_ => OnLinkPoll());
        _lastRead = TryRead();

        // Before the watch starts, and not under the reload lock: an owner may make this watcher
        // under its own lock, which an event's reload (holding the reload lock) waits for.
        try
        {
            FollowLink();
            _watcher = Watch();
        }
        catch
        {
            // A started poll is rooted by its timer: left running, it read the file for ever and told
            // an owner that had seen this constructor fail, one more each time the owner tried again.
            _missingFilePoll.Dispose();
            _linkPoll.Dispose();
            throw;
        }

        if (Volatile.Read(ref _nameUnwatched))
        {
            FollowLink(); // the folder's name could not be watched: poll in its place
        }
    }

    public void Dispose()
    {
        // Not under _reloading: a reload holds it while it calls into its owner, which may be
        // disposing this watcher under its own lock. Full fences pair with OnMissingFilePoll's.
        Interlocked.Exchange(ref _disposed, true);
        _missingFilePoll.Dispose();
        _linkPoll.Dispose();
        Interlocked.CompareExchange(ref _watcher, null!, null!).Dispose();
    }

    private Watches Watch()
    {
        FileSystemWatcher watcher = _newWatcher(_directory);
        try
        {
            // Attributes: a chmod that makes the file safe again (or not) must be seen like an edit.
            watcher.NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime | NotifyFilters.Attributes;
            watcher.Changed += OnEvent;
            watcher.Created += OnEvent;
            watcher.Deleted += OnEvent;
            watcher.Renamed += OnEvent;
            watcher.Error += OnError;
            watcher.EnableRaisingEvents = true;
        }
        catch
        {
            watcher.Dispose();
            throw;
        }

        return new Watches(watcher, WatchFolderName());
    }

    /// <summary>
    /// The folder's name in its parent; none for a root, or a parent that may not be watched (the folder's
    /// own watch still works, and the file is read every <see cref="LinkPollInterval"/> in place of this one).
    /// </summary>
    private FileSystemWatcher? WatchFolderName()
    {
        if (Path.GetDirectoryName(_directory) is not { } parent)
        {
            return null;
        }

        FileSystemWatcher? watcher = null;
        try
        {
            watcher = _newWatcher(parent);
            watcher.NotifyFilter = NotifyFilters.DirectoryName;
            watcher.Created += OnFolderEvent;
            watcher.Deleted += OnFolderEvent;
            watcher.Renamed += OnFolderEvent;
            watcher.Error += OnError;
            watcher.EnableRaisingEvents = true;
            Volatile.Write(ref _nameUnwatched, false);
            return watcher;
        }
        catch (Exception ex) when (ex is ArgumentException or IOException or UnauthorizedAccessException)
        {
            // Swallowed, a folder swapped in by rename could go unseen with nothing in the log.
            watcher?.Dispose();
            Volatile.Write(ref _nameUnwatched, true);
            OssuaryLog.AuthorizedKeysNotWatched(_logger, _path, ex);
            return null;
        }
    }

    private void OnError(object sender, ErrorEventArgs e)
    {
        OssuaryLog.AuthorizedKeysReloadFailed(_logger, _path, e.GetException());
        PollAfterDeletion(deleted: true);
    }

    /// <summary>The folder was renamed, deleted or (re)created under its name: read the file as the path now has it, and watch afresh.</summary>
    private void OnFolderEvent(object sender, FileSystemEventArgs e)
    {
        string folder = Path.GetFileName(_directory);
        if (!string.Equals(e.Name, folder, StringComparison.Ordinal)
            && !(e is RenamedEventArgs renamed && string.Equals(renamed.OldName, folder, StringComparison.Ordinal)))
        {
            return;
        }

        lock (_reloading)
        {
            Reading content = TryRead();
            if (content != _lastRead)
            {
                _lastRead = content;
                Reload(content);
            }
        }

        PollAfterDeletion(deleted: true); // the folder's watch may be following the old folder away
    }

    /// <summary>
    /// A deleted folder takes its watch with it, and one recreated under the same name is not
    /// watched (a deployment that replaces the whole folder). The file's deletion is seen, perhaps
    /// before its folder's, and the file may be back before this runs: after any deletion, look for
    /// the file, and when it is there watch afresh and read it again.
    /// </summary>
    private void PollAfterDeletion(bool deleted)
    {
        lock (_reloading)
        {
            if (!Volatile.Read(ref _disposed) && (deleted || !File.Exists(_fullPath)))
            {
                ArmMissingFilePoll();
            }
        }
    }

    private void ArmMissingFilePoll()
    {
        try
        {
            _missingFilePoll.Change(MissingFilePollInterval, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Disposed since the check: nothing to look for any more.
        }
    }

    private void OnMissingFilePoll()
    {
        lock (_reloading)
        {
            if (Volatile.Read(ref _disposed))
            {
                return;
            }

            if (!File.Exists(_fullPath))
            {
                ArmMissingFilePoll();
                return;
            }

            // Watch afresh, then read: a file written meanwhile is either read now or raises an event.
            Watches watcher;
            try
            {
                watcher = Watch();
            }
            catch (Exception ex) when (ex is ArgumentException or IOException or UnauthorizedAccessException)
            {
                // Gone again before it could be watched, or not watchable (the inotify limits): read it
                // here every second until it can be. Left at that, the file was never read again, and a
                // key revoked in it stayed admitted, with nothing in the log.
                if (!_unwatched && File.Exists(_fullPath))
                {
                    _unwatched = true;
                    OssuaryLog.AuthorizedKeysNotWatched(_logger, _path, ex);
                }

                ReadIfChanged();
                ArmMissingFilePoll();
                return;
            }

            _unwatched = false;
            Interlocked.Exchange(ref _watcher, watcher).Dispose();
            if (Volatile.Read(ref _disposed))
            {
                _watcher.Dispose(); // disposed meanwhile, before or after it took the old watcher
                return;
            }

            FollowLink(); // the new watch of the folder's name may have failed, or worked again: poll, or stop, as that asks
            ReadIfChanged(); // back without an event reaching us: the old watch had died
        }
    }

    /// <summary>Reloads when what the file says changed since it was last read. Call under the reload lock.</summary>
    private void ReadIfChanged()
    {
        Reading content = TryRead();
        if (content != _lastRead)
        {
            _lastRead = content;
            Reload(content);
        }
    }

    /// <summary>
    /// A link's target may be edited or replaced in a folder nobody watches (the link's folder sees
    /// nothing): read the file again, and reload when what it says changed.
    /// </summary>
    private void OnLinkPoll()
    {
        lock (_reloading)
        {
            if (Volatile.Read(ref _disposed))
            {
                return;
            }

            Reading content = TryRead();
            if (content != _lastRead)
            {
                _lastRead = content;
                Reload(content); // follows the link again
            }
            else
            {
                FollowLink();
            }
        }
    }

    /// <summary>
    /// Polls the file while it, or a folder on its path, is a link (it may become one, or stop being one, with
    /// any change), or while its folder's name is not watched. Call under the reload lock, or before the watch starts.
    /// </summary>
    private void FollowLink()
    {
        bool link = Volatile.Read(ref _nameUnwatched) || LeadsThroughLink(_fullPath);
        try
        {
            _linkPoll.Change(link ? LinkPollInterval : Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile: nothing to follow any more.
        }
    }

    /// <summary>
    /// Whether <paramref name="fullPath"/> or a folder on its way is a link. Only the file itself was
    /// checked: a swap of a linked folder above it (<c>current -&gt; releases/v2</c>) went unseen, and a
    /// client key left out of the new release stayed admitted until something in the old one changed.
    /// </summary>
    private static bool LeadsThroughLink(string fullPath)
    {
        for (string? path = fullPath; path is not null; path = Path.GetDirectoryName(path))
        {
            try
            {
                if (new FileInfo(path).LinkTarget is not null)
                {
                    return true;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Gone or closed to us (the file deleted, say): the folders above may still be links.
            }
        }

        return false;
    }

    private void OnEvent(object sender, FileSystemEventArgs e)
    {
        // Events arrive on pool threads, several per save; reloads run one at a time and each reads
        // the file as it is then, so the last one always sees the final content.
        bool ours = IsFile(e.Name) || (e is RenamedEventArgs renamed && IsFile(renamed.OldName));
        lock (_reloading)
        {
            // When another name changed and what the file says did not, there is nothing to reload.
            Reading content = TryRead();
            if (ours || content != _lastRead)
            {
                _lastRead = content;
                Reload(content);
            }
        }

        PollAfterDeletion(e.ChangeType == WatcherChangeTypes.Deleted);
    }

    /// <summary>The folder's watch and the watch of its name in its parent, replaced together.</summary>
    private sealed class Watches(FileSystemWatcher folder, FileSystemWatcher? name) : IDisposable
    {
        public void Dispose()
        {
            folder.Dispose();
            name?.Dispose();
        }
    }

    private bool IsFile(string? name) => string.Equals(name, Path.GetFileName(_fullPath), StringComparison.Ordinal);

    /// <summary>The file as it is now: its text, or whether it is missing or refused (Reload then says why).</summary>
    private Reading TryRead()
    {
        try
        {
            using var reader = new StreamReader(OssuaryAuthorizedKeys.OpenFile(_fullPath));
            return new Reading(Present: true, reader.ReadToEnd());
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return new Reading(Present: false, null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            // A file longer than a trust file may be (FormatException) is refused as Reload reads it again.
            return new Reading(Present: true, null);
        }
    }

    /// <summary>
    /// What a read of the file found: its text, or no text because it is missing, or because it is
    /// there but refused (others may write it, another user owns it) or unreadable. The two without
    /// text differ: a refused file that is then deleted must admit nobody, and the link poll sees a
    /// link's target deleted only as this change. Missing is what the open found, not File.Exists,
    /// which finds a link whose target is gone.
    /// </summary>
    private readonly record struct Reading(bool Present, string? Text);

    private void Reload(Reading reading)
    {
        FollowLink();

        // Missing as the read found it (a link left dangling too, which File.Exists counts as a file), or gone since.
        if (!reading.Present || !File.Exists(_fullPath))
        {
            // Applied first, as a reload is before event 21: event 23 says nobody is admitted, so it must be true when read.
            _changed(_path, []);
            OssuaryLog.AuthorizedKeysFileMissing(_logger, _path);
            return;
        }

        try
        {
            _changed(_path, reading.Text is not { } text ? OssuaryAuthorizedKeys.Load(_fullPath) : OssuaryAuthorizedKeys.Parse(new StringReader(text), _fullPath));
        }
        catch (Exception ex) when (ex is FormatException or IOException or UnauthorizedAccessException)
        {
            OssuaryLog.AuthorizedKeysReloadFailed(_logger, _path, ex);
        }
    }
}
