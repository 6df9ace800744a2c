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
/// </summary>
internal sealed class AuthorizedKeysFileWatcher : IDisposable
{
    private readonly string _path;
    private readonly string _fullPath;
    private readonly Action<string, IReadOnlyList<OssuaryPublicKey>> _changed;
    private readonly ILogger _logger;
    private readonly FileSystemWatcher _watcher;
    private readonly Lock _reloading = new();
    private string? _lastRead;

    public AuthorizedKeysFileWatcher(string path, Action<string, IReadOnlyList<OssuaryPublicKey>> changed, ILogger logger)
    {
        _path = path;
        _fullPath = Path.GetFullPath(path);
        _changed = changed;
        _logger = logger;
        _lastRead = TryRead();
        _watcher = new FileSystemWatcher(Path.GetDirectoryName(_fullPath)!)
        {
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        _watcher.Changed += OnEvent;
        _watcher.Created += OnEvent;
        _watcher.Deleted += OnEvent;
        _watcher.Renamed += OnEvent;
        _watcher.Error += (_, e) => OssuaryLog.AuthorizedKeysReloadFailed(_logger, _path, e.GetException());
        _watcher.EnableRaisingEvents = true;
    }

    public void Dispose() => _watcher.Dispose();

    private void OnEvent(object sender, FileSystemEventArgs e)
    {
        // Events arrive on pool threads, several per save; reloads run one at a time and each reads
        // the file as it is then, so the last one always sees the final content.
        bool ours = IsFile(e.Name) || (e is RenamedEventArgs renamed && IsFile(renamed.OldName));
        lock (_reloading)
        {
            string? content = TryRead();
            if (!ours && content == _lastRead)
            {
                return; // another name changed, and what the file says did not
            }

            _lastRead = content;
            Reload(content);
        }
    }

    private bool IsFile(string? name) => string.Equals(name, Path.GetFileName(_fullPath), StringComparison.Ordinal);

    /// <summary>The file's text as it is now; null when it is missing or cannot be read.</summary>
    private string? TryRead()
    {
        try
        {
            return File.ReadAllText(_fullPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private void Reload(string? content)
    {
        if (!File.Exists(_fullPath))
        {
            OssuaryLog.AuthorizedKeysFileMissing(_logger, _path);
            _changed(_path, []);
            return;
        }

        try
        {
            _changed(_path, content is null ? OssuaryAuthorizedKeys.Load(_fullPath) : OssuaryAuthorizedKeys.Parse(new StringReader(content), _fullPath));
        }
        catch (Exception ex) when (ex is FormatException or IOException or UnauthorizedAccessException)
        {
            OssuaryLog.AuthorizedKeysReloadFailed(_logger, _path, ex);
        }
    }
}
