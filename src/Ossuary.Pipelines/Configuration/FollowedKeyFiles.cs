namespace Ossuary.Pipelines.Configuration;

/// <summary>
/// The authorized-keys files that running servers follow, by options name. What such a file holds
/// is its watcher's business (deleted: nobody is admitted from it; malformed: the previous keys
/// stay), so the options validator does not read it again on a reload: refusing the changed options
/// for the file's state kept a key removed from configuration admitted while the file was away.
/// A file the options name for the first time, at start-up or by a change of path, is still read.
/// The server's own identity key file is followed the same way: a running server goes on presenting
/// the key it read when the file cannot be read again (<see cref="Integrations.ServerPlanSource"/>).
/// </summary>
internal sealed class FollowedKeyFiles
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Name, string Path), int> _followers = [];

    /// <summary>Whether a server with the options named <paramref name="name"/> follows <paramref name="path"/>.</summary>
    public bool IsFollowed(string name, string path)
    {
        lock (_lock)
        {
            return _followers.ContainsKey((name, path));
        }
    }

    /// <summary>Marks <paramref name="path"/> as followed for <paramref name="name"/> until the result is disposed.</summary>
    public IDisposable Follow(string name, string path)
    {
        lock (_lock)
        {
            _followers[(name, path)] = _followers.GetValueOrDefault((name, path)) + 1;
        }

        return new Following(this, (name, path));
    }

    private void Unfollow((string Name, string Path) key)
    {
        lock (_lock)
        {
            if (_followers[key] == 1)
            {
                _followers.Remove(key);
            }
            else
            {
                _followers[key]--;
            }
        }
    }

    private sealed class Following(FollowedKeyFiles owner, (string Name, string Path) key) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Unfollow(key);
            }
        }
    }
}
