using System.Reflection;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// Whether two <see cref="OssuaryServerOptions"/> make the same server: the same settings, the same key
/// objects and callbacks (delegates of the same method on the same target), the same keys listed in any
/// order. Listeners given such options share one plan source (<see cref="NamedPlanSources"/>), as an
/// endpoint that Kestrel rebinds on a configuration reload runs <c>UseOssuary(options)</c> again.
/// </summary>
internal static class EquivalentServerOptions
{
    // Every public setting, those added later too: objects compare by Equals (a reference, unless the
    // type says otherwise), so a setting this does not know of can only make listeners share less.
    private static readonly PropertyInfo[] Settings = typeof(OssuaryServerOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance);

    public static bool Equivalent(OssuaryServerOptions a, OssuaryServerOptions b) =>
        a.ConfigurationProblems.SequenceEqual(b.ConfigurationProblems)
        && a.CloseWait == b.CloseWait // internal, so not among the public settings
        && Settings.All(setting => Same(setting.GetValue(a), setting.GetValue(b)));

    private static bool Same(object? a, object? b) =>
        a is ICollection<OssuaryPublicKey> keys && b is ICollection<OssuaryPublicKey> others
            ? keys.ToHashSet().SetEquals(others)
            : Equals(a, b);
}
