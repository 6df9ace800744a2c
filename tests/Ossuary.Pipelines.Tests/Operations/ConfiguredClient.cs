using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A client host (<c>AddOssuaryClient</c>) bound to the section "Ossuary" of settings the test
/// changes and then reloads (<see cref="MutableSource"/>), logging from Debug up to a fake provider.
/// </summary>
internal static class ConfiguredClient
{
    /// <summary>Builds it; <paramref name="configure"/> adds to its services after <c>AddOssuaryClient</c>.</summary>
    public static (ServiceProvider Provider, IConfigurationRoot Configuration) Build(
        Dictionary<string, string?> settings, FakeLoggerProvider logs, Action<IServiceCollection>? configure = null)
    {
        IConfigurationRoot configuration = new ConfigurationBuilder().Add(new MutableSource(settings)).Build();
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        services.AddOssuaryClient(configuration.GetSection("Ossuary"));
        configure?.Invoke(services);
        return (services.BuildServiceProvider(), configuration);
    }
}
