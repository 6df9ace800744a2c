using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A Kestrel echo server behind <c>UseOssuary()</c>, its options bound (<c>AddOssuaryServer</c>) from
/// the section "Ossuary" of settings the test changes and then reloads, as a reloadOnChange file
/// source would (<see cref="MutableSource"/>).
/// </summary>
internal sealed class ConfiguredEchoServer : IAsyncDisposable
{
    private ConfiguredEchoServer(KestrelHost host, IConfigurationRoot configuration)
    {
        Host = host;
        Configuration = configuration;
    }

    public KestrelHost Host { get; }

    public IConfigurationRoot Configuration { get; }

    /// <summary>Starts it; <paramref name="logs"/>, when given, receives the library's log lines from Debug up.</summary>
    public static async Task<ConfiguredEchoServer> StartAsync(Dictionary<string, string?> settings, FakeLoggerProvider? logs = null)
    {
        IConfigurationRoot configuration = new ConfigurationBuilder().Add(new MutableSource(settings)).Build();
        KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary().UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                builder.Services.AddOssuaryServer(configuration.GetSection("Ossuary"));
                if (logs is not null)
                {
                    builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug);
                }
            });
        return new ConfiguredEchoServer(host, configuration);
    }

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}
