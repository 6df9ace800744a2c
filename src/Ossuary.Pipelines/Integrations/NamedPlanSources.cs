using System.Runtime.CompilerServices;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// The plan sources of one host's listeners. Those that follow named options are kept one per name,
/// those of options given to <c>UseOssuary(options)</c> one per equivalent options
/// (<see cref="EquivalentServerOptions"/>): Kestrel calls an endpoint's <c>UseOssuary</c> again each
/// time a configuration reload (<c>reloadOnChange</c>) rebinds it, and a source made per call lived,
/// watching its files and following the options, until the host stopped, though the rebound endpoint
/// no longer used it. (A rebind whose options differ still makes a source of its own, since a listener
/// still bound may use the previous one: it ends with the host.)
/// <c>AddOssuaryServer</c> registers this with the host's services, which dispose it with themselves,
/// and it disposes every source it holds: a host that failed to start never stops, and its sources
/// went on watching their authorized-keys files, holding the server's key, for the life of the process.
/// Without <c>AddOssuaryServer</c> the host's logger factory disposes it (<see cref="DisposedWithLoggerFactory"/>);
/// services without one leave it to the host's stop.
/// </summary>
internal sealed class NamedPlanSources : IDisposable
{
    // For services that have none registered (options registered without AddOssuaryServer).
    private static readonly ConditionalWeakTable<IServiceProvider, NamedPlanSources> PerHost = [];

    private readonly Lock _lock = new();
    private readonly Dictionary<string, ServerPlanSource> _named = new(StringComparer.Ordinal);
    private readonly List<(OssuaryServerOptions Options, ServerPlanSource Source)> _given = [];
    private readonly HashSet<ServerPlanSource> _all = [];
    private bool _disposed;

    /// <summary>The ones of the host whose services these are.</summary>
    public static NamedPlanSources Of(IServiceProvider services) =>
        services.GetService(typeof(NamedPlanSources)) as NamedPlanSources ?? PerHost.GetValue(services, static services =>
        {
            // Not registered, so the services will not dispose it: their logger factory does, as a host
            // that failed to start (and so never stops) is disposed. A logger factory already disposed
            // means services disposed: whatever is made after ends at once (see DisposeIfDisposed).
            var sources = new NamedPlanSources();
            if (DisposedWithLoggerFactory.Attach(services, sources) == false)
            {
                sources.Dispose();
            }

            return sources;
        });

    /// <summary>The source of <paramref name="name"/>, if a listener made one.</summary>
    public ServerPlanSource? Find(string name)
    {
        lock (_lock)
        {
            return _named.GetValueOrDefault(name);
        }
    }

    /// <summary>
    /// The source of <paramref name="name"/>, made by <paramref name="create"/> when there is none.
    /// <paramref name="stopped"/>, given the source made, registers its end: call <see cref="Remove"/>, then dispose it.
    /// </summary>
    public ServerPlanSource GetOrAdd(string name, Func<ServerPlanSource> create, Action<ServerPlanSource> stopped) =>
        GetOrAdd(() => _named.GetValueOrDefault(name), create, source => _named.Add(name, source), stopped);

    /// <summary>
    /// The source of options equivalent to <paramref name="options"/> (given to <c>UseOssuary(options)</c>),
    /// made by <paramref name="create"/> when there is none; <paramref name="stopped"/> as for a name.
    /// </summary>
    public ServerPlanSource GetOrAdd(OssuaryServerOptions options, Func<ServerPlanSource> create, Action<ServerPlanSource> stopped)
    {
        // Kept as given (a copy): the caller may change its object once UseOssuary has returned.
        OssuaryServerOptions given = options.Copy();
        return GetOrAdd(
            () => _given.FirstOrDefault(entry => EquivalentServerOptions.Equivalent(entry.Options, given)).Source,
            create,
            source => _given.Add((given, source)),
            stopped);
    }

    private ServerPlanSource GetOrAdd(Func<ServerPlanSource?> find, Func<ServerPlanSource> create, Action<ServerPlanSource> add, Action<ServerPlanSource> stopped)
    {
        ServerPlanSource source;
        lock (_lock)
        {
            if (find() is { } existing)
            {
                return existing;
            }

            source = create();
            if (!_disposed)
            {
                add(source);
                _all.Add(source);
            }
        }

        // Outside the lock: a host already stopped runs its callback (and so Remove) at once.
        stopped(source);
        DisposeIfDisposed(source);
        return source;
    }

    /// <summary>Forgets <paramref name="source"/> (its host stopped, and it is disposed): a later listener of its name gets a fresh one.</summary>
    public void Remove(string? name, ServerPlanSource source)
    {
        lock (_lock)
        {
            if (name is not null && _named.TryGetValue(name, out ServerPlanSource? current) && ReferenceEquals(current, source))
            {
                _named.Remove(name);
            }

            _given.RemoveAll(entry => ReferenceEquals(entry.Source, source));
            _all.Remove(source);
        }
    }

    public void Dispose()
    {
        ServerPlanSource[] sources;
        lock (_lock)
        {
            _disposed = true;
            sources = [.. _all];
            _all.Clear();
            _named.Clear();
            _given.Clear();
        }

        foreach (ServerPlanSource source in sources)
        {
            source.Dispose();
        }
    }

    /// <summary>A source made after the services were disposed (a late start-up): nothing would end it.</summary>
    private void DisposeIfDisposed(ServerPlanSource source)
    {
        bool disposed;
        lock (_lock)
        {
            disposed = _disposed;
        }

        if (disposed)
        {
            source.Dispose();
        }
    }
}
