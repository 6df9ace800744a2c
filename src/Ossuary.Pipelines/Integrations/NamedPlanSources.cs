using System.Runtime.CompilerServices;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// The plan sources of one host's listeners that follow named options, one per name. Kestrel calls
/// an endpoint's <c>UseOssuary(name)</c> again each time a configuration reload (<c>reloadOnChange</c>)
/// rebinds it; a source made per call lived, watching its files and following the options, until
/// the host stopped, though the rebound endpoint no longer used it, so a server grew by one per
/// rebind. Every listener of the name shares the one source instead: it follows the same options.
/// </summary>
internal sealed class NamedPlanSources
{
    private static readonly ConditionalWeakTable<IServiceProvider, NamedPlanSources> PerHost = [];

    private readonly Lock _lock = new();
    private readonly Dictionary<string, ServerPlanSource> _sources = new(StringComparer.Ordinal);

    public static NamedPlanSources Of(IServiceProvider services) => PerHost.GetValue(services, static _ => new());

    /// <summary>
    /// The source of <paramref name="name"/>, made by <paramref name="create"/> when there is none.
    /// <paramref name="stopped"/>, given the source made, registers its end: call <see cref="Remove"/>, then dispose it.
    /// </summary>
    public ServerPlanSource GetOrAdd(string name, Func<ServerPlanSource> create, Action<ServerPlanSource> stopped)
    {
        ServerPlanSource source;
        lock (_lock)
        {
            if (_sources.TryGetValue(name, out ServerPlanSource? existing))
            {
                return existing;
            }

            source = create();
            _sources.Add(name, source);
        }

        // Outside the lock: a host already stopped runs its callback (and so Remove) at once.
        stopped(source);
        return source;
    }

    /// <summary>Forgets <paramref name="source"/> (its host stopped): a later listener of its name gets a fresh one.</summary>
    public void Remove(string name, ServerPlanSource source)
    {
        lock (_lock)
        {
            if (_sources.TryGetValue(name, out ServerPlanSource? current) && ReferenceEquals(current, source))
            {
                _sources.Remove(name);
            }
        }
    }
}
