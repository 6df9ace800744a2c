using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using static Ossuary.Pipelines.Tests.Support.LogRecords;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// How long what <c>UseOssuary</c> starts (options subscription, file watchers, the server's key) lives.
/// Kestrel's endpoints from configuration with <c>reloadOnChange</c>: an endpoint whose settings
/// change is unbound and bound again, and its <c>UseOssuary</c> runs again. Each such run made a
/// plan source (options subscription, retry timer, authorized-keys file watchers, link poll) that
/// lived until the host stopped, though nothing used it any more: a long-running server that is
/// reconfigured now and then grew by one per rebind, and each change of the options was applied
/// (key files read, event 25 logged) once per rebind there had been.
/// </summary>
public sealed class PlanSourceLifetimeTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-endpoint-reload-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task RebindingAnEndpointDoesNotLeaveItsPreviousPlanSourceFollowingTheOptions()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        using var fileClient = OssuaryIdentity.Generate();
        string keyFile = Path.Combine(_folder, "server.key");
        OssuarySecretKeyFile.Write(keyFile, serverKey);
        string authorizedKeys = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllLinesAsync(authorizedKeys, [OssuaryAuthorizedKeys.FormatLine(fileClient.PublicKey)]);
        var settings = new Dictionary<string, string?>
        {
            ["Kestrel:Endpoints:Devices:Url"] = "http://127.0.0.1:0",
            ["Kestrel:Endpoints:Devices:Generation"] = "0",
            ["Ossuary:IdentityKeyFile"] = keyFile,
            ["Ossuary:AuthorizedKeysFile"] = authorizedKeys,
            ["Ossuary:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString(),
        };
        IConfigurationRoot configuration = new ConfigurationBuilder().Add(new MutableSource(settings)).Build();
        var logs = new FakeLoggerProvider();
        var bindings = new EndpointBindings();
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Configure(configuration.GetSection("Kestrel"), reloadOnChange: true)
                .Endpoint("Devices", endpoint => bindings.Configured(endpoint).UseOssuary().UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                builder.Services.AddOssuaryServer(configuration.GetSection("Ossuary"));
                builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug);
            });

        const int rebinds = 5;
        for (int i = 1; i <= rebinds; i++)
        {
            await RebindAsync(host, bindings, settings, configuration, rebinds: 1);
            await (await Echo.ConnectAndEchoAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), Echo.ClientOptions(clientKey, serverKey.PublicKey))).DisposeAsync();
        }

        // A change of the options only: the endpoint stays bound, and the plan source serving it
        // applies the change, which its listeners hear of while the configuration reloads.
        using var addedKey = OssuaryIdentity.Generate();
        settings["Ossuary:AuthorizedClientKeys:1"] = addedKey.PublicKey.ToString();
        int reloadsBefore = Records(logs, OptionsReloaded).Count;
        configuration.Reload();
        await (await Echo.ConnectAndEchoAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), Echo.ClientOptions(addedKey, serverKey.PublicKey))).DisposeAsync();

        Assert.Equal(1, Records(logs, OptionsReloaded).Count - reloadsBefore);
    }

    [Fact]
    public async Task AnEndpointIsReboundWhileAChangeOfItsOptionsWaitsForItsKeyFile()
    {
        // A change of the options that the validator refuses (read again every second until it passes)
        // leaves the monitor nothing to return: UseOssuary(name) read the options first on the rebind
        // of its endpoint, and threw, so Kestrel's reload failed half-way (logged Critical) and the
        // endpoint stayed where it was, out of Kestrel's reach, though its name already had a source.
        // (A value the binder cannot convert: a key file named anew is no longer read by the validator
        // on a reload, but by the running server, so it leaves the monitor its value.)
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        using var newClientKey = OssuaryIdentity.Generate();
        string serverPath = Path.Combine(_folder, "server.key");
        OssuarySecretKeyFile.Write(serverPath, serverKey);
        IConfigurationRoot configuration = EndpointConfiguration(out Dictionary<string, string?> settings);
        settings["Ossuary:IdentityKeyFile"] = serverPath;
        settings["Ossuary:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString();
        configuration.Reload();
        var logs = new FakeLoggerProvider();
        var bindings = new EndpointBindings();
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Configure(configuration.GetSection("Kestrel"), reloadOnChange: true)
                .Endpoint("Devices", endpoint => bindings.Configured(endpoint).UseOssuary().UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                builder.Services.AddOssuaryServer(configuration.GetSection("Ossuary"));
                builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug);
            });
        settings["Ossuary:HandshakeTimeout"] = "5 seconds";
        Assert.ThrowsAny<Exception>(configuration.Reload); // to the reloader, which a file source would swallow
        await HostilePeerTests.WaitForAsync(() => Records(logs, OptionsReloadFailed).Count > 0);

        await RebindAsync(host, bindings, settings, configuration, rebinds: 1, reloadThrows: true);

        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(clientKey, serverKey.PublicKey))).DisposeAsync(); // the previous options meanwhile

        settings["Ossuary:HandshakeTimeout"] = "00:00:05";
        settings["Ossuary:AuthorizedClientKeys:0"] = newClientKey.PublicKey.ToString();
        configuration.Reload();
        await HostilePeerTests.WaitForAsync(() => Records(logs, OptionsReloaded).Count > 0);
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(newClientKey, serverKey.PublicKey))).DisposeAsync();
    }

    [Fact]
    public async Task RebindingAnEndpointWithEqualOptionsKeepsItsPlanSourceAndGeneratedKey()
    {
        // UseOssuary(options) rather than a name: each rebind made a source of its own, and the
        // previous ones lived on until the host stopped. An unauthenticated server without a key
        // shows it: each source generated a key of its own (event 10), so the server's key changed
        // with every rebind, and every source so far still held one.
        IConfigurationRoot configuration = EndpointConfiguration(out Dictionary<string, string?> settings);
        var logs = new FakeLoggerProvider();
        var bindings = new EndpointBindings();
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Configure(configuration.GetSection("Kestrel"), reloadOnChange: true)
                .Endpoint("Devices", endpoint => bindings.Configured(endpoint)
                    .UseOssuary(o => o.Mode = OssuaryServerMode.Unauthenticated)
                    .UseConnectionHandler<EchoConnectionHandler>()),
            builder => builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug));
        OssuaryPublicKey first = await ServerKeyAsync(host);

        await RebindAsync(host, bindings, settings, configuration, rebinds: 5);

        Assert.Equal(first, await ServerKeyAsync(host));
        Assert.Single(Records(logs, GeneratedServerIdentity));
    }

    [Fact]
    public async Task RebindingAnEndpointWithTheSameOptionsLeavesNoWatchOfItsAuthorizedKeysFileBehind()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        string keys = Directory.CreateDirectory(Path.Combine(_folder, "keys")).FullName;
        string authorizedKeys = Path.Combine(keys, "authorized_keys");
        await File.WriteAllLinesAsync(authorizedKeys, [OssuaryAuthorizedKeys.FormatLine(clientKey.PublicKey)]);
        var options = new OssuaryServerOptions { Identity = serverKey, AuthorizedKeysFile = authorizedKeys };
        IConfigurationRoot configuration = EndpointConfiguration(out Dictionary<string, string?> settings);
        var bindings = new EndpointBindings();
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Configure(configuration.GetSection("Kestrel"), reloadOnChange: true)
                .Endpoint("Devices", endpoint => bindings.Configured(endpoint).UseOssuary(options).UseConnectionHandler<EchoConnectionHandler>()));
        int watches = InotifyWatches.On(keys);

        await RebindAsync(host, bindings, settings, configuration, rebinds: 5);

        await (await Echo.ConnectAndEchoAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), Echo.ClientOptions(clientKey, serverKey.PublicKey))).DisposeAsync();
        Assert.Equal(watches, InotifyWatches.On(keys));
    }

    private const int GeneratedServerIdentity = 10;

    /// <summary>Settings of one Kestrel endpoint, "Devices", which <see cref="RebindAsync"/> changes.</summary>
    private static IConfigurationRoot EndpointConfiguration(out Dictionary<string, string?> settings)
    {
        settings = new Dictionary<string, string?>
        {
            ["Kestrel:Endpoints:Devices:Url"] = "http://127.0.0.1:0",
            ["Kestrel:Endpoints:Devices:Generation"] = "0",
        };
        return new ConfigurationBuilder().Add(new MutableSource(settings)).Build();
    }

    /// <summary>Changes the endpoint's settings <paramref name="rebinds"/> times, each time until Kestrel has bound it again.</summary>
    /// <param name="host">The host.</param>
    /// <param name="bindings">What the endpoint's callback saw of each binding.</param>
    /// <param name="settings">The settings <paramref name="configuration"/> reloads from.</param>
    /// <param name="configuration">The configuration.</param>
    /// <param name="rebinds">How many times.</param>
    /// <param name="reloadThrows">Whether options the validator refuses make each reload throw (to the reloader: a file source swallows it).</param>
    private static async Task RebindAsync(KestrelHost host, EndpointBindings bindings, Dictionary<string, string?> settings, IConfigurationRoot configuration, int rebinds, bool reloadThrows = false)
    {
        for (int i = 1; i <= rebinds; i++)
        {
            int generation = int.Parse(settings["Kestrel:Endpoints:Devices:Generation"]!, System.Globalization.CultureInfo.InvariantCulture) + 1;
            int configured = bindings.Count;
            settings["Kestrel:Endpoints:Devices:Generation"] = generation.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (reloadThrows)
            {
                Assert.ThrowsAny<Exception>(configuration.Reload);
            }
            else
            {
                configuration.Reload();
            }

            // Bound again: the listener Kestrel made for the new settings has its port, and the host's one
            // address is that listener's. Waiting for the port to change instead waited forever when the
            // kernel gave the new listener the port the old one had just let go (37 binds in 200,000: Linux
            // binds port 0 with SO_REUSEADDR, as .NET sets it, to one of the 7,058 odd ports of the lower half of its range).
            // One snapshot of the addresses: Kestrel empties and refills them while it rebinds.
            await HostilePeerTests.WaitForAsync(() =>
                bindings.Count > configured
                && bindings.Latest?.IPEndPoint?.Port is int port and not 0
                && host.Addresses is [string address]
                && new Uri(address).Port == port);
        }
    }

    /// <summary>
    /// What the "Devices" endpoint's callback saw of each binding: Kestrel runs it for each (re)binding of
    /// the endpoint, with the listen options it then binds, whose endpoint gets the port the kernel gave.
    /// </summary>
    private sealed class EndpointBindings
    {
        private ListenOptions? _latest;
        private int _count;

        public ListenOptions? Latest => Volatile.Read(ref _latest);

        public int Count => Volatile.Read(ref _count);

        /// <summary>Notes a binding of the endpoint, and returns its listen options to configure.</summary>
        public ListenOptions Configured(Microsoft.AspNetCore.Server.Kestrel.EndpointConfiguration endpoint)
        {
            Volatile.Write(ref _latest, endpoint.ListenOptions);
            Interlocked.Increment(ref _count);
            return endpoint.ListenOptions;
        }
    }

    /// <summary>The key an unauthenticated server presents now.</summary>
    private static async Task<OssuaryPublicKey> ServerKeyAsync(KestrelHost host)
    {
        var anyServer = new OssuaryClientOptions { TrustServer = (_, _) => ValueTask.FromResult(true) };
        await using OssuaryClientConnection connection = await Echo.ConnectAndEchoAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), anyServer);
        return connection.Ossuary.RemotePublicKey!;
    }

    [Fact]
    public async Task AHostThatFailsToStartLeavesNoWatchOfItsAuthorizedKeysFileBehind()
    {
        // A second listener's port is taken: Kestrel has run UseOssuary for the first when it fails,
        // and a host that never started never stops, so nothing ended that listener's watcher.
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        string keys = Directory.CreateDirectory(Path.Combine(_folder, "keys")).FullName;
        string authorizedKeys = Path.Combine(keys, "authorized_keys");
        await File.WriteAllLinesAsync(authorizedKeys, [OssuaryAuthorizedKeys.FormatLine(clientKey.PublicKey)]);
        var taken = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0); // another server has the second port
        taken.Start();
        try
        {
            // The host is disposed without ever having stopped (KestrelHost does, as RunAsync does).
            await Assert.ThrowsAnyAsync<IOException>(() => KestrelHost.StartAsync(
                k =>
                {
                    k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary().UseConnectionHandler<EchoConnectionHandler>());
                    k.Listen((IPEndPoint)taken.LocalEndpoint);
                },
                builder => builder.Services.AddOssuaryServer().Configure(o =>
                {
                    o.Identity = serverKey;
                    o.AuthorizedKeysFile = authorizedKeys;
                })));
        }
        finally
        {
            taken.Stop();
        }

        Assert.Equal(0, InotifyWatches.On(keys));
    }

    [Fact]
    public async Task AHostThatFailsToStartLeavesNoWatchOfTheAuthorizedKeysFileOfOptionsGivenToUseOssuary()
    {
        // As above, with the options given to UseOssuary and no AddOssuaryServer: nothing of the
        // library's is registered with the host's services, whose disposal ended the sources above.
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        string keys = Directory.CreateDirectory(Path.Combine(_folder, "given-keys")).FullName;
        string authorizedKeys = Path.Combine(keys, "authorized_keys");
        await File.WriteAllLinesAsync(authorizedKeys, [OssuaryAuthorizedKeys.FormatLine(clientKey.PublicKey)]);
        var taken = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            await Assert.ThrowsAnyAsync<IOException>(() => KestrelHost.StartAsync(k =>
            {
                k.Listen(IPAddress.Loopback, 0, listen => listen
                    .UseOssuary(o =>
                    {
                        o.Identity = serverKey;
                        o.AuthorizedKeysFile = authorizedKeys;
                    })
                    .UseConnectionHandler<EchoConnectionHandler>());
                k.Listen((IPEndPoint)taken.LocalEndpoint);
            }));
        }
        finally
        {
            taken.Stop();
        }

        Assert.Equal(0, InotifyWatches.On(keys));
    }

    [Fact]
    public async Task AHostWhoseLoggerFactoryRefusesProvidersStillServesOptionsGivenToUseOssuary()
    {
        // The sources above are tied to the host's logger factory through a provider; a logging
        // library's own factory may refuse providers, and UseOssuary must not fail with it.
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen
                .UseOssuary(o =>
                {
                    o.Identity = serverKey;
                    o.AuthorizedClientKeys.Add(clientKey.PublicKey);
                })
                .UseConnectionHandler<EchoConnectionHandler>()),
            builder => builder.Services.AddSingleton<ILoggerFactory, ProviderRefusingLoggerFactory>());

        await using OssuaryClientConnection connection = await Echo.ConnectAndEchoAsync(
            new IPEndPoint(IPAddress.Loopback, host.Port()), Echo.ClientOptions(clientKey, serverKey.PublicKey));
    }

    private sealed class ProviderRefusingLoggerFactory : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException("this factory takes no providers");

        public void Dispose()
        {
        }
    }
}
