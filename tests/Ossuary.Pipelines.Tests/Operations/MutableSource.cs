using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>An in-memory source whose data the test edits, then reloads, as a file source would on change.</summary>
internal sealed class MutableSource(Dictionary<string, string?> data) : IConfigurationSource
{
    public IConfigurationProvider Build(IConfigurationBuilder builder) => new Provider(data);

    /// <summary>
    /// Reloads <paramref name="configuration"/> as a file source does: a change that an options
    /// validator refuses throws to the reloader, and a file source swallows it.
    /// </summary>
    public static void ReloadAsAFileWould(IConfigurationRoot configuration)
    {
        try
        {
            configuration.Reload();
        }
        catch (AggregateException ex) when (ex.InnerException is OptionsValidationException)
        {
            // The validator's refusal, thrown to whoever reloaded.
        }
    }

    private sealed class Provider(Dictionary<string, string?> source) : ConfigurationProvider
    {
        public override void Load() => Data = new Dictionary<string, string?>(source, StringComparer.OrdinalIgnoreCase);
    }
}
