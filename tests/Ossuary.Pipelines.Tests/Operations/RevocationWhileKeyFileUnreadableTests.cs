using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A client key removed from configuration is refused from the next handshake on, also while the
/// server's own key file, which it read at start-up and presents from memory, cannot be read again
/// (deleted, half-written, its permissions changed). The whole change was refused for the key file's
/// state and retried every second, so the revoked client was admitted for as long as the file stayed
/// away. The server now keeps presenting the key it has, applies the rest, and says why at Error.
/// The same for a server key removed from an <c>AddOssuaryClient</c> client's configuration while
/// the client's own key file cannot be read again: the client went on trusting that server.
/// </summary>
public sealed class RevocationWhileKeyFileUnreadableTests : IDisposable
{
    private const int OptionsReloadFailed = 24;
    private const int OptionsReloaded = 25;

    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-revoke-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // file modes are a Unix concept
    [InlineData("deleted")]
    [InlineData("half-written")]
    [InlineData("readable by others")]
    public async Task AClientKeyRemovedFromConfigurationIsRefusedWhileTheServersKeyFileCannotBeReadAgain(string state)
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var keptKey = OssuaryIdentity.Generate();
        using var revokedKey = OssuaryIdentity.Generate();
        string keyFile = Path.Combine(_folder, "server.key");
        OssuarySecretKeyFile.Write(keyFile, serverKey);
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = keyFile,
            ["Ossuary:AuthorizedClientKeys:0"] = keptKey.PublicKey.ToString(),
            ["Ossuary:AuthorizedClientKeys:1"] = revokedKey.PublicKey.ToString(),
        };
        var logs = new FakeLoggerProvider();
        await using ConfiguredEchoServer server = await ConfiguredEchoServer.StartAsync(settings, logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, server.Host.Port());
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(revokedKey, serverKey.PublicKey))).DisposeAsync();

        if (state == "deleted")
        {
            File.Delete(keyFile);
        }
        else if (state == "half-written")
        {
            await File.WriteAllTextAsync(keyFile, File.ReadAllText(keyFile)[..10]); // an editor or a copy caught mid-write
        }
        else
        {
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }

        settings.Remove("Ossuary:AuthorizedClientKeys:1");
        try
        {
            server.Configuration.Reload();
        }
        catch (AggregateException ex) when (ex.InnerException is OptionsValidationException)
        {
            // What a validator's refusal throws to the reloader (a file source swallows it).
        }

        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id is OptionsReloadFailed or OptionsReloaded));

        await using OssuaryClientConnection revoked = await OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(revokedKey, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(revoked);
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(keptKey, serverKey.PublicKey))).DisposeAsync(); // the key it had
        FakeLogRecord said = Assert.Single(logs.Collector.GetSnapshot(), r => r.Level == LogLevel.Error);
        Assert.Contains("server.key", said.Message + said.Exception?.Message);
    }

    [Fact]
    public async Task AServerKeyRemovedFromAClientsConfigurationIsNoLongerTrustedWhileItsKeyFileCannotBeReadAgain()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var otherServerKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        string keyFile = Path.Combine(_folder, "client.key");
        OssuarySecretKeyFile.Write(keyFile, clientKey);
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, listen => listen
            .UseOssuary(o =>
            {
                o.Identity = serverKey;
                o.AuthorizedClientKeys.Add(clientKey.PublicKey);
            })
            .UseConnectionHandler<EchoConnectionHandler>()));
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        var settings = new Dictionary<string, string?>
        {
            ["Client:IdentityKeyFile"] = keyFile,
            ["Client:TrustedServerKeys:0"] = otherServerKey.PublicKey.ToString(),
            ["Client:TrustedServerKeys:1"] = serverKey.PublicKey.ToString(),
        };
        IConfigurationRoot configuration = new ConfigurationBuilder().Add(new MutableSource(settings)).Build();
        var logs = new FakeLoggerProvider();
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug));
        services.AddOssuaryClient(configuration.GetSection("Client"));
        await using ServiceProvider provider = services.BuildServiceProvider();
        OssuaryConnectionFactory factory = provider.GetRequiredService<OssuaryConnectionFactory>();
        await using (ConnectionContext trusted = await factory.ConnectAsync(endpoint).AsTask().Within())
        {
            await Echo.RoundTripAsync(trusted);
        }

        File.Delete(keyFile);
        settings.Remove("Client:TrustedServerKeys:1");
        try
        {
            configuration.Reload();
        }
        catch (AggregateException ex) when (ex.InnerException is OptionsValidationException)
        {
            // What a validator's refusal throws to the reloader (a file source swallows it).
        }

        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id is OptionsReloadFailed or OptionsReloaded));

        OssuaryException untrusted = await Assert.ThrowsAsync<OssuaryException>(() => factory.ConnectAsync(endpoint).AsTask().Within());
        Assert.Equal(OssuaryErrorReason.UntrustedServer, untrusted.Reason);
        FakeLogRecord said = Assert.Single(logs.Collector.GetSnapshot(), r => r.Level == LogLevel.Error);
        Assert.Contains("client.key", said.Message + said.Exception?.Message);
    }
}
