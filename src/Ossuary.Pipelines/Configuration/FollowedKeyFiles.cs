namespace Ossuary.Pipelines.Configuration;

/// <summary>
/// The authorized-keys files that running servers follow, by options name. What such a file holds
/// is its watcher's business (deleted: nobody is admitted from it; malformed: the previous keys
/// stay), so the options validator does not read it again on a reload: refusing the changed options
/// for the file's state kept a key removed from configuration admitted while the file was away.
/// A file the options name for the first time, at start-up or by a change of path, is still read.
/// The identity key file is followed the same way: a running server (or connection factory) goes on
/// presenting the key it read when the file cannot be read again (<see cref="Integrations.ServerPlanSource"/>).
/// Files are followed per options type and name: a server's and a client's options may both be the default ones.
/// </summary>
internal sealed class FollowedKeyFiles
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(Type Options, string Name, string Path), int> _followers = [];

    /// <summary>Whether a server (or client) with the <typeparamref name="TOptions"/> named <paramref name="name"/> follows <paramref name="path"/>.</summary>
    public bool IsFollowed<TOptions>(string name, string path)
    {
        lock (_lock)
        {
            return _followers.ContainsKey((typeof(TOptions), name, path));
        }
    }

    /// <summary>Marks <paramref name="path"/> as followed for the <typeparamref name="TOptions"/> named <paramref name="name"/> until the result is disposed.</summary>
    public IDisposable Follow<TOptions>(string name, string path)
    {
        var key = (typeof(TOptions), name, path);
        lock (_lock)
        {
            _followers[key] = _followers.GetValueOrDefault(key) + 1;
        }

        return new Following(this, key);
    }

    private void Unfollow((Type Options, string Name, string Path) key)
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

    private sealed class Following(FollowedKeyFiles owner, (Type Options, string Name, string Path) key) : IDisposable
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
