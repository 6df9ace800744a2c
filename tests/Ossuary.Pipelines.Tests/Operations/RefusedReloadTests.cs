using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using static Ossuary.Pipelines.Tests.Support.LogRecords;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A key rotation whose configuration names the new key file before the file is in place: before,
/// the server went on with its old key in silence, and copying the file in changed nothing until some
/// other setting changed. Now the key in force is kept and said at Error (event 27), the rest of the
/// change applies, and the file is read again until its key can be presented (event 25). A change the
/// options validator refuses (the monitor tells its listeners nothing; it throws to whoever reloaded,
/// and a file source swallows that) is logged at Error (event 24) and read again until it passes. The
/// same for a setting that does not even bind ("HandshakeTimeout": "5 seconds"): the options factory
/// throws the binder's InvalidOperationException, which escaped the follower's timer and ended the process.
/// </summary>
public sealed class RefusedReloadTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-refused-reload-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AServerWhoseNewKeyFileArrivesAfterTheSettingSaysSoThenSwitchesToIt()
    {
        using var oldKey = OssuaryIdentity.Generate();
        using var newKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = WriteKeyFile(oldKey, "old.key"),
            ["Ossuary:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString(),
        };
        var logs = new FakeLoggerProvider();
        await using ConfiguredEchoServer server = await ConfiguredEchoServer.StartAsync(settings, logs);
        KestrelHost host = server.Host;
        IConfigurationRoot configuration = server.Configuration;
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());

        string newPath = Path.Combine(_folder, "new.key");
        settings["Ossuary:IdentityKeyFile"] = newPath; // not there yet
        configuration.Reload();

        await HostilePeerTests.WaitForAsync(() => Records(logs, IdentityKeyFileKept).Count > 0);
        FakeLogRecord kept = Assert.Single(Records(logs, IdentityKeyFileKept));
        Assert.Equal(LogLevel.Error, kept.Level);
        Assert.Contains("new.key", kept.Exception?.Message);
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(clientKey, oldKey.PublicKey))).DisposeAsync(); // the old key meanwhile

        OssuarySecretKeyFile.Write(newPath, newKey); // the deployment catches up

        await HostilePeerTests.WaitForAsync(() => Presents(logs, newKey));
        await using OssuaryClientConnection onNew = await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(clientKey, newKey.PublicKey));
        Assert.Equal(newKey.PublicKey, onNew.Ossuary.RemotePublicKey);
        Assert.Single(Records(logs, IdentityKeyFileKept)); // reported once, not once per second of reading again
        Assert.Empty(Records(logs, OptionsReloadFailed));
    }

    [Fact]
    public async Task AConnectionFactoryWhoseNewKeyFileArrivesAfterTheSettingSaysSoThenSwitchesToIt()
    {
        using var oldKey = OssuaryIdentity.Generate();
        using var newKey = OssuaryIdentity.Generate();
        await using FactoryRotation rotation = await RotateBeforeTheNewKeyFileIsThereAsync(oldKey, newKey);
        (OssuaryConnectionFactory factory, IPEndPoint endpoint, FakeLoggerProvider logs) = (rotation.Factory, rotation.Endpoint, rotation.Logs);
        Assert.Equal(LogLevel.Error, Assert.Single(Records(logs, IdentityKeyFileKept)).Level);
        Assert.Equal(oldKey.PublicKey, await LocalKeyAsync(factory, endpoint));

        OssuarySecretKeyFile.Write(rotation.NewPath, newKey);

        using (var limit = new CancellationTokenSource(TestTimeout.Default))
        {
            while (await LocalKeyAsync(factory, endpoint) != newKey.PublicKey)
            {
                await Task.Delay(100, limit.Token);
            }
        }

        Assert.Single(Records(logs, IdentityKeyFileKept));
        Assert.Empty(Records(logs, OptionsReloadFailed));
    }

    [Fact]
    public async Task AConnectionFactoryOnAFakeClockStillRetriesARefusedChangeEverySecond()
    {
        // The options' TimeProvider is the handshake timeouts' clock; a host or test that gives a
        // fake one (never advanced) never saw a refused change reported nor retried, though the
        // docs promise it is read again every second; so for a key file not there yet.
        using var oldKey = OssuaryIdentity.Generate();
        using var newKey = OssuaryIdentity.Generate();
        await using FactoryRotation rotation = await RotateBeforeTheNewKeyFileIsThereAsync(
            oldKey, newKey, services => services.PostConfigure<OssuaryClientOptions>(o => o.TimeProvider = new FakeTimeProvider()));
        OssuarySecretKeyFile.Write(rotation.NewPath, newKey);
        await HostilePeerTests.WaitForAsync(() => Presents(rotation.Logs, newKey));
        Assert.Equal(newKey.PublicKey, await LocalKeyAsync(rotation.Factory, rotation.Endpoint));
    }

    [Fact]
    public async Task AConnectionFactorySaysWhichOptionsItReloadedAsAServerDoes()
    {
        // The README's promise for both: a change applied is event 25, so an operator who fixed a
        // refused change (event 24) sees when it took effect. The factory applied it in silence.
        using var clientKey = OssuaryIdentity.Generate();
        using var oldServer = OssuaryIdentity.Generate();
        using var newServer = OssuaryIdentity.Generate();
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = WriteKeyFile(clientKey, "client.key"),
            ["Ossuary:TrustedServerKeys:0"] = oldServer.PublicKey.ToString(),
        };
        var logs = new FakeLoggerProvider();
        (ServiceProvider client, IConfigurationRoot configuration) = ConfiguredClient.Build(settings, logs);
        await using ServiceProvider provider = client;
        _ = provider.GetRequiredService<OssuaryConnectionFactory>();

        settings["Ossuary:TrustedServerKeys:1"] = newServer.PublicKey.ToString(); // step 1 of a server key's rotation
        configuration.Reload(); // the monitor's listeners hear of it before this returns

        FakeLogRecord reloaded = Assert.Single(Records(logs, OptionsReloaded));
        Assert.Equal(LogLevel.Information, reloaded.Level);
        Assert.Equal("Ossuary.Pipelines.Client", reloaded.Category);
        Assert.Contains(clientKey.PublicKey.ToString(), reloaded.Message, StringComparison.Ordinal);
        Assert.Contains(" 2 ", reloaded.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AServerWhoseOptionsNoValidatorChecksTakesItsNewKeyFileOnceItArrives()
    {
        // Options bound without AddOssuaryServer (the reflection binder, as the README allows): no
        // validator refuses the change, so the monitor hands it on, and the server, unable to read the
        // new key file yet, logged event 24 and never tried again. The file copied into place changed
        // nothing, and a key removed in the same edit stayed admitted until some other setting changed.
        using var oldKey = OssuaryIdentity.Generate();
        using var newKey = OssuaryIdentity.Generate();
        using var clients = new KeptAndRevokedClients();
        Dictionary<string, string?> settings = clients.Settings(WriteKeyFile(oldKey, "old.key"));
        IConfigurationRoot configuration = new ConfigurationBuilder().Add(new MutableSource(settings)).Build();
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary().UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                builder.Services.Configure<OssuaryServerOptions>(configuration.GetSection("Ossuary"));
                builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug);
            });
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());

        string newPath = Path.Combine(_folder, "new.key");
        KeptAndRevokedClients.Revoke(settings);
        settings["Ossuary:IdentityKeyFile"] = newPath; // not there yet
        configuration.Reload();
        await HostilePeerTests.WaitForAsync(() => Records(logs, IdentityKeyFileKept).Count > 0);
        OssuarySecretKeyFile.Write(newPath, newKey);
        await HostilePeerTests.WaitForAsync(() => Presents(logs, newKey));

        await clients.AssertRevokedAsync(endpoint, newKey.PublicKey);
        Assert.Single(Records(logs, IdentityKeyFileKept)); // once, not once per attempt
    }

    [Fact]
    public async Task AServerWhoseIdentitySelectorChoosesItsKeySaysSoWhenItReloads()
    {
        // Only a selector: the plan has no key of its own, and event 25 named the anonymous key as
        // the server's identity, which reads as a server that presents none.
        using var selected = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        using var addedKey = OssuaryIdentity.Generate();
        var settings = new Dictionary<string, string?> { ["Ossuary:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString() };
        IConfigurationRoot configuration = new ConfigurationBuilder().Add(new MutableSource(settings)).Build();
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary().UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                builder.Services.AddOssuaryServer(configuration.GetSection("Ossuary")).Configure(o => o.IdentitySelector = _ => selected);
                builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug);
            });

        settings["Ossuary:AuthorizedClientKeys:1"] = addedKey.PublicKey.ToString();
        configuration.Reload(); // the monitor's listeners hear of it before this returns
        await (await Echo.ConnectAndEchoAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), Echo.ClientOptions(addedKey, selected.PublicKey))).DisposeAsync();

        FakeLogRecord reloaded = Assert.Single(Records(logs, OptionsReloaded));
        Assert.DoesNotContain(OssuaryPublicKey.Anonymous.ToString(), reloaded.Message, StringComparison.Ordinal);
        Assert.Contains("per connection", reloaded.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AServerSurvivesAReloadThatDoesNotBindAndAppliesTheFixedOne()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clients = new KeptAndRevokedClients();
        Dictionary<string, string?> settings = clients.Settings(WriteKeyFile(serverKey, "server.key"));
        var logs = new FakeLoggerProvider();
        await using ConfiguredEchoServer server = await ConfiguredEchoServer.StartAsync(settings, logs);
        KestrelHost host = server.Host;
        IConfigurationRoot configuration = server.Configuration;
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());

        KeptAndRevokedClients.Revoke(settings);
        settings["Ossuary:HandshakeTimeout"] = "5 seconds"; // a typo in the same edit
        Assert.ThrowsAny<Exception>(configuration.Reload); // to the reloader, which a file source would swallow

        await HostilePeerTests.WaitForAsync(() => Records(logs, OptionsReloadFailed).Count > 0);
        FakeLogRecord refused = Assert.Single(Records(logs, OptionsReloadFailed));
        Assert.Equal(LogLevel.Error, refused.Level);
        Assert.Contains("HandshakeTimeout", refused.Exception?.Message);

        settings["Ossuary:HandshakeTimeout"] = "00:00:05"; // fixed
        configuration.Reload();
        await HostilePeerTests.WaitForAsync(() => Records(logs, OptionsReloaded).Count > 0);

        await clients.AssertRevokedAsync(endpoint, serverKey.PublicKey);
    }

    [Fact]
    public async Task AConnectionFactorySurvivesAReloadThatDoesNotBind()
    {
        using var clientKey = OssuaryIdentity.Generate();
        using var serverKey = OssuaryIdentity.Generate();
        string clientKeyFile = Path.Combine(_folder, "client.key");
        OssuarySecretKeyFile.Write(clientKeyFile, clientKey);
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = clientKeyFile,
            ["Ossuary:TrustedServerKeys:0"] = serverKey.PublicKey.ToString(),
        };
        var logs = new FakeLoggerProvider();
        (ServiceProvider client, IConfigurationRoot configuration) = ConfiguredClient.Build(settings, logs);
        await using ServiceProvider provider = client;
        OssuaryConnectionFactory factory = provider.GetRequiredService<OssuaryConnectionFactory>();

        settings["Ossuary:ConnectTimeout"] = "thirty seconds";
        Assert.ThrowsAny<Exception>(configuration.Reload);

        await HostilePeerTests.WaitForAsync(() => Records(logs, OptionsReloadFailed).Count > 0);
        FakeLogRecord refused = Assert.Single(Records(logs, OptionsReloadFailed));
        Assert.Equal(LogLevel.Error, refused.Level);
        Assert.Contains("ConnectTimeout", refused.Exception?.Message);
    }

    /// <summary>
    /// An echo server that admits both keys, and a configured client host presenting
    /// <paramref name="oldKey"/> from old.key whose settings then name new.key before that file is
    /// there; returns once the client has kept its key in force and applied the rest (event 27).
    /// </summary>
    private async Task<FactoryRotation> RotateBeforeTheNewKeyFileIsThereAsync(
        OssuaryIdentity oldKey, OssuaryIdentity newKey, Action<IServiceCollection>? configure = null)
    {
        var serverKey = OssuaryIdentity.Generate();
        KestrelHost host = await KestrelHost.StartEchoAsync(serverKey, oldKey.PublicKey, newKey.PublicKey);
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = WriteKeyFile(oldKey, "old.key"),
            ["Ossuary:TrustedServerKeys:0"] = serverKey.PublicKey.ToString(),
        };
        var logs = new FakeLoggerProvider();
        (ServiceProvider provider, IConfigurationRoot configuration) = ConfiguredClient.Build(settings, logs, configure);
        var rotation = new FactoryRotation(serverKey, host, provider, logs, Path.Combine(_folder, "new.key"));

        settings["Ossuary:IdentityKeyFile"] = rotation.NewPath; // not there yet
        configuration.Reload();
        await HostilePeerTests.WaitForAsync(() => Records(logs, IdentityKeyFileKept).Count > 0);
        return rotation;
    }

    /// <summary>Whether an event 25 says the options reloaded present <paramref name="identity"/>'s key.</summary>
    private static bool Presents(FakeLoggerProvider logs, OssuaryIdentity identity) =>
        Records(logs, OptionsReloaded).Any(r => r.Message.Contains(identity.PublicKey.ToString(), StringComparison.Ordinal));

    private static async Task<OssuaryPublicKey> LocalKeyAsync(OssuaryConnectionFactory factory, IPEndPoint endpoint)
    {
        await using ConnectionContext connection = await factory.ConnectAsync(endpoint).AsTask().Within();
        return connection.Features.Get<IOssuaryConnectionFeature>()!.LocalPublicKey;
    }

    private string WriteKeyFile(OssuaryIdentity identity, string name)
    {
        string path = Path.Combine(_folder, name);
        OssuarySecretKeyFile.Write(path, identity);
        return path;
    }

    /// <summary>What <see cref="RotateBeforeTheNewKeyFileIsThereAsync"/> set up, disposed in reverse.</summary>
    private sealed class FactoryRotation(OssuaryIdentity serverKey, KestrelHost host, ServiceProvider client, FakeLoggerProvider logs, string newPath) : IAsyncDisposable
    {
        public OssuaryConnectionFactory Factory { get; } = client.GetRequiredService<OssuaryConnectionFactory>();

        public IPEndPoint Endpoint { get; } = new(IPAddress.Loopback, host.Port());

        public FakeLoggerProvider Logs => logs;

        public string NewPath => newPath;

        public async ValueTask DisposeAsync()
        {
            await client.DisposeAsync();
            await host.DisposeAsync();
            serverKey.Dispose();
        }
    }
}
