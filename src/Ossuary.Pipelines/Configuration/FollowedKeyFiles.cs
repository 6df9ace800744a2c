namespace Ossuary.Pipelines.Configuration;

/// <summary>
/// The authorized-keys files that running servers follow, by options name. What such a file holds
/// is its watcher's business (deleted: nobody is admitted from it; malformed: the previous keys
/// stay), so the options validator does not read it again on a reload: refusing the changed options
/// for the file's state kept a key removed from configuration admitted while the file was away.
/// A file the options name for the first time, at start-up or by a change of path, is still read.
/// The identity key files that running servers (and connection factories) present are followed too:
/// one that has a key file's key in force goes on presenting it while the file its options name cannot
/// be read, the one in force or a new one (<see cref="Integrations.ServerPlanSource"/>), so the
/// validator does not read that file on a reload either.
/// Files are followed per options type and name: a server's and a client's options may both be the default ones.
/// So are the servers (and connection factories) themselves, files or not: a validation of options that one of
/// them already runs with is a reload's, and a reload reads only a regular key file (see <see cref="IsRunning"/>).
/// </summary>
internal sealed class FollowedKeyFiles
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(Type Options, string Name, string Path, bool Identity), int> _followers = [];
    private readonly Dictionary<(Type Options, string Name), int> _running = [];

    /// <summary>
    /// Whether a server (or connection factory) with the <typeparamref name="TOptions"/> named <paramref name="name"/>
    /// runs: the options validator then reads a key file only if it is a regular one. A named pipe it named for the
    /// first time (no key file in force) was opened on the configuration's reload thread, which waited for a writer
    /// for ever, and every later change of the configuration and the host's stop with it.
    /// </summary>
    public bool IsRunning<TOptions>(string name)
    {
        lock (_lock)
        {
            return _running.ContainsKey((typeof(TOptions), name));
        }
    }

    /// <summary>Marks a server (or connection factory) with the <typeparamref name="TOptions"/> named <paramref name="name"/> as running until the result is disposed.</summary>
    public IDisposable Run<TOptions>(string name)
    {
        (Type, string) key = (typeof(TOptions), name);
        lock (_lock)
        {
            _running[key] = _running.GetValueOrDefault(key) + 1;
        }

        return new Following(() =>
        {
            lock (_lock)
            {
                if (--_running[key] == 0)
                {
                    _running.Remove(key);
                }
            }
        });
    }

    /// <summary>Whether a server with the <typeparamref name="TOptions"/> named <paramref name="name"/> follows the authorized-keys file <paramref name="path"/>.</summary>
    public bool IsFollowed<TOptions>(string name, string path)
    {
        lock (_lock)
        {
            return _followers.ContainsKey((typeof(TOptions), name, path, false));
        }
    }

    /// <summary>Whether a server (or client) with the <typeparamref name="TOptions"/> named <paramref name="name"/> presents a key it read from an identity key file.</summary>
    public bool PresentsKeyFile<TOptions>(string name)
    {
        lock (_lock)
        {
            return _followers.Keys.Any(key => key.Options == typeof(TOptions) && key.Name == name && key.Identity);
        }
    }

    /// <summary>Marks the authorized-keys file <paramref name="path"/> as followed for the <typeparamref name="TOptions"/> named <paramref name="name"/> until the result is disposed.</summary>
    public IDisposable Follow<TOptions>(string name, string path) => Add((typeof(TOptions), name, path, false));

    /// <summary>Marks the identity key file <paramref name="path"/> as presented for the <typeparamref name="TOptions"/> named <paramref name="name"/> until the result is disposed.</summary>
    public IDisposable FollowIdentity<TOptions>(string name, string path) => Add((typeof(TOptions), name, path, true));

    private Following Add((Type Options, string Name, string Path, bool Identity) key)
    {
        lock (_lock)
        {
            _followers[key] = _followers.GetValueOrDefault(key) + 1;
        }

        return new Following(() => Unfollow(key));
    }

    private void Unfollow((Type Options, string Name, string Path, bool Identity) key)
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

    private sealed class Following(Action unfollow) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                unfollow();
            }
        }
    }
}
