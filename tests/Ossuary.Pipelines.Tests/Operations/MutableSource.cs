using Microsoft.Extensions.Configuration;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>An in-memory source whose data the test edits, then reloads, as a file source would on change.</summary>
internal sealed class MutableSource(Dictionary<string, string?> data) : IConfigurationSource
{
    public IConfigurationProvider Build(IConfigurationBuilder builder) => new Provider(data);

    private sealed class Provider(Dictionary<string, string?> source) : ConfigurationProvider
    {
        public override void Load() => Data = new Dictionary<string, string?>(source, StringComparer.OrdinalIgnoreCase);
    }
}
