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
using Ossuary.Pipelines.Transport;
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
    public async Task AClientKeyRemovedInTheEditThatMovesTheServersKeyFileToOneNotThereYetIsRefusedAtOnce()
    {
        // A rotation whose setting names the new key file before the file is copied into place, in the
        // same edit as a revocation: the validator refused the whole change for the new file, so the
        // revoked client stayed admitted until the file arrived. Now the key in force is kept (event 27),
        // the revocation applies, and the new key is taken once its file is there (event 25).
        using var oldKey = OssuaryIdentity.Generate();
        using var newKey = OssuaryIdentity.Generate();
        using var clients = new KeptAndRevokedClients();
        string oldFile = Path.Combine(_folder, "old.key");
        string newFile = Path.Combine(_folder, "new.key");
        OssuarySecretKeyFile.Write(oldFile, oldKey);
        Dictionary<string, string?> settings = clients.Settings(oldFile);
        var logs = new FakeLoggerProvider();
        await using ConfiguredEchoServer server = await ConfiguredEchoServer.StartAsync(settings, logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, server.Host.Port());

        settings["Ossuary:IdentityKeyFile"] = newFile; // not there yet
        KeptAndRevokedClients.Revoke(settings);
        MutableSource.ReloadAsAFileWould(server.Configuration);
        await HostilePeerTests.WaitForAsync(() => Records(logs, OptionsReloadFailed).Count + Records(logs, IdentityKeyFileKept).Count > 0);

        await clients.AssertRevokedAsync(endpoint, oldKey.PublicKey); // the kept client on the key in force meanwhile
        FakeLogRecord kept = Assert.Single(Records(logs, IdentityKeyFileKept));
        Assert.Equal(LogLevel.Error, kept.Level);
        Assert.Contains("new.key", kept.Message);
        Assert.Contains(oldKey.PublicKey.ToString(), kept.Message);

        OssuarySecretKeyFile.Write(newFile, newKey); // the deployment catches up
        await HostilePeerTests.WaitForAsync(() => Records(logs, OptionsReloaded).Any(r => r.Message.Contains(newKey.PublicKey.ToString(), StringComparison.Ordinal)));
        await using OssuaryClientConnection onNew = await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(clients.Kept, newKey.PublicKey));
        Assert.Equal(newKey.PublicKey, onNew.Ossuary.RemotePublicKey);
        Assert.Empty(Records(logs, OptionsReloadFailed));
        Assert.Single(Records(logs, IdentityKeyFileKept)); // said once, not once per second of reading again
    }

    [Fact]
    public async Task AServerKeyRemovedInTheEditThatMovesAClientsKeyFileToOneNotThereYetIsNoLongerTrustedAtOnce()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var otherServerKey = OssuaryIdentity.Generate();
        using var oldKey = OssuaryIdentity.Generate();
        using var newKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartEchoAsync(serverKey, oldKey.PublicKey, newKey.PublicKey);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        string oldFile = Path.Combine(_folder, "old.key");
        string newFile = Path.Combine(_folder, "new.key");
        OssuarySecretKeyFile.Write(oldFile, oldKey);
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = oldFile,
            ["Ossuary:TrustedServerKeys:0"] = otherServerKey.PublicKey.ToString(),
            ["Ossuary:TrustedServerKeys:1"] = serverKey.PublicKey.ToString(),
        };
        var logs = new FakeLoggerProvider();
        (ServiceProvider client, IConfigurationRoot configuration) = ConfiguredClient.Build(settings, logs);
        await using ServiceProvider provider = client;
        OssuaryConnectionFactory factory = provider.GetRequiredService<OssuaryConnectionFactory>();

        settings["Ossuary:IdentityKeyFile"] = newFile; // not there yet
        settings.Remove("Ossuary:TrustedServerKeys:1");
        MutableSource.ReloadAsAFileWould(configuration);
        await HostilePeerTests.WaitForAsync(() => Records(logs, OptionsReloadFailed).Count + Records(logs, IdentityKeyFileKept).Count > 0);

        OssuaryException untrusted = await Assert.ThrowsAsync<OssuaryException>(() => factory.ConnectAsync(endpoint).AsTask().Within());
        Assert.Equal(OssuaryErrorReason.UntrustedServer, untrusted.Reason);
        FakeLogRecord kept = Assert.Single(Records(logs, IdentityKeyFileKept));
        Assert.Equal(LogLevel.Error, kept.Level);
        Assert.Contains("new.key", kept.Message);

        settings["Ossuary:TrustedServerKeys:1"] = serverKey.PublicKey.ToString(); // trusted again, to see which key the client presents
        OssuarySecretKeyFile.Write(newFile, newKey);
        MutableSource.ReloadAsAFileWould(configuration);
        await HostilePeerTests.WaitForAsync(() => Records(logs, OptionsReloaded).Any(r => r.Message.Contains(newKey.PublicKey.ToString(), StringComparison.Ordinal)));
        using (var limit = new CancellationTokenSource(TestTimeout.Default))
        {
            while (true)
            {
                await using ConnectionContext connection = await factory.ConnectAsync(endpoint).AsTask().Within();
                if (connection.Features.Get<IOssuaryConnectionFeature>()!.LocalPublicKey == newKey.PublicKey)
                {
                    break;
                }

                await Task.Delay(100, limit.Token);
            }
        }

        Assert.Empty(Records(logs, OptionsReloadFailed));
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
