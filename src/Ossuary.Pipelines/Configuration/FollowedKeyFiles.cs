namespace Ossuary.Pipelines.Configuration;

/// <summary>
/// The servers (and connection factories) that run, by options type and name: a validation of options
/// that one of them already runs with is a reload's, and the options validator then reads no file (see
/// <see cref="OssuaryOptionsValidator"/>); the running one reads them itself. A server's and a client's
/// options may both be the default ones, hence the type.
/// </summary>
internal sealed class FollowedKeyFiles
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(Type Options, string Name), int> _running = [];

    /// <summary>
    /// Whether a server (or connection factory) with the <typeparamref name="TOptions"/> named <paramref name="name"/>
    /// runs: the options validator then reads no key file. One it read on a reload (a named pipe, a file on a hung
    /// mount) was opened on the configuration's reload thread, which waited for it, and every later change of the
    /// configuration and the host's stop with it.
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

        return new Running(() =>
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

    private sealed class Running(Action stop) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                stop();
            }
        }
    }
}
