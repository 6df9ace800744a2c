using System.Runtime.CompilerServices;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// The plan sources of one host's listeners. Those that follow named options are kept one per name:
/// Kestrel calls an endpoint's <c>UseOssuary(name)</c> again each time a configuration reload
/// (<c>reloadOnChange</c>) rebinds it, and a source made per call lived, watching its files and
/// following the options, until the host stopped, though the rebound endpoint no longer used it.
/// <c>AddOssuaryServer</c> registers this with the host's services, which dispose it with themselves,
/// and it disposes every source it holds: a host that failed to start never stops, and its sources
/// went on watching their authorized-keys files, holding the server's key, for the life of the process.
/// </summary>
internal sealed class NamedPlanSources : IDisposable
{
    // For services that have none registered (options registered without AddOssuaryServer).
    private static readonly ConditionalWeakTable<IServiceProvider, NamedPlanSources> PerHost = [];

    private readonly Lock _lock = new();
    private readonly Dictionary<string, ServerPlanSource> _named = new(StringComparer.Ordinal);
    private readonly HashSet<ServerPlanSource> _all = [];
    private bool _disposed;

    /// <summary>The ones of the host whose services these are.</summary>
    public static NamedPlanSources Of(IServiceProvider services) =>
        services.GetService(typeof(NamedPlanSources)) as NamedPlanSources ?? PerHost.GetValue(services, static _ => new());

    /// <summary>
    /// The source of <paramref name="name"/>, made by <paramref name="create"/> when there is none.
    /// <paramref name="stopped"/>, given the source made, registers its end: call <see cref="Remove"/>, then dispose it.
    /// </summary>
    public ServerPlanSource GetOrAdd(string name, Func<ServerPlanSource> create, Action<ServerPlanSource> stopped)
    {
        ServerPlanSource source;
        lock (_lock)
        {
            if (_named.TryGetValue(name, out ServerPlanSource? existing))
            {
                return existing;
            }

            source = create();
            if (!_disposed)
            {
                _named.Add(name, source);
                _all.Add(source);
            }
        }

        // Outside the lock: a host already stopped runs its callback (and so Remove) at once.
        stopped(source);
        DisposeIfDisposed(source);
        return source;
    }

    /// <summary>Disposes <paramref name="source"/>, of options not named, with the host's services.</summary>
    public void Add(ServerPlanSource source)
    {
        lock (_lock)
        {
            if (!_disposed)
            {
                _all.Add(source);
            }
        }

        DisposeIfDisposed(source);
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
