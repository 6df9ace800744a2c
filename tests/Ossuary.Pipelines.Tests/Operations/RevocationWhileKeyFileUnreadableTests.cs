using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using static Ossuary.Pipelines.Tests.Support.LogRecords;
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
        using var clients = new KeptAndRevokedClients();
        string keyFile = Path.Combine(_folder, "server.key");
        OssuarySecretKeyFile.Write(keyFile, serverKey);
        Dictionary<string, string?> settings = clients.Settings(keyFile);
        var logs = new FakeLoggerProvider();
        await using ConfiguredEchoServer server = await ConfiguredEchoServer.StartAsync(settings, logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, server.Host.Port());
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(clients.Revoked, serverKey.PublicKey))).DisposeAsync();

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

        KeptAndRevokedClients.Revoke(settings);
        MutableSource.ReloadAsAFileWould(server.Configuration);

        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id is OptionsReloadFailed or OptionsReloaded));

        await clients.AssertRevokedAsync(endpoint, serverKey.PublicKey); // the kept client, on the key the server had
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
        await using KestrelHost host = await KestrelHost.StartEchoAsync(serverKey, clientKey.PublicKey);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = keyFile,
            ["Ossuary:TrustedServerKeys:0"] = otherServerKey.PublicKey.ToString(),
            ["Ossuary:TrustedServerKeys:1"] = serverKey.PublicKey.ToString(),
        };
        var logs = new FakeLoggerProvider();
        (ServiceProvider client, IConfigurationRoot configuration) = ConfiguredClient.Build(settings, logs);
        await using ServiceProvider provider = client;
        OssuaryConnectionFactory factory = provider.GetRequiredService<OssuaryConnectionFactory>();
        await using (ConnectionContext trusted = await factory.ConnectAsync(endpoint).AsTask().Within())
        {
            await Echo.RoundTripAsync(trusted);
        }

        File.Delete(keyFile);
        settings.Remove("Ossuary:TrustedServerKeys:1");
        MutableSource.ReloadAsAFileWould(configuration);

        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id is OptionsReloadFailed or OptionsReloaded));

        OssuaryException untrusted = await Assert.ThrowsAsync<OssuaryException>(() => factory.ConnectAsync(endpoint).AsTask().Within());
        Assert.Equal(OssuaryErrorReason.UntrustedServer, untrusted.Reason);
        FakeLogRecord said = Assert.Single(logs.Collector.GetSnapshot(), r => r.Level == LogLevel.Error);
        Assert.Contains("client.key", said.Message + said.Exception?.Message);
    }
}
