using System.Net;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A deployment that swaps the authorized-keys file's whole folder by renames (mv keys keys.old;
/// mv keys.new keys): no name in the watched folder changes, the watch follows the old folder to
/// its new name, and the file's path now holds other keys.
/// </summary>
public sealed class RenamedKeysFolderTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-renamed-folder-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AKeyLeftOutOfAFolderSwappedInByRenameIsRefused()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var keptClient = OssuaryIdentity.Generate();
        using var revokedClient = OssuaryIdentity.Generate();
        string keys = Path.Combine(_folder, "keys");
        string file = Path.Combine(keys, "authorized_keys");
        Directory.CreateDirectory(keys);
        await File.WriteAllLinesAsync(file, [OssuaryAuthorizedKeys.FormatLine(keptClient.PublicKey), OssuaryAuthorizedKeys.FormatLine(revokedClient.PublicKey)]);
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, file, logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(revokedClient, serverKey.PublicKey))).DisposeAsync();

        string next = Path.Combine(_folder, "keys.new");
        Directory.CreateDirectory(next);
        await File.WriteAllLinesAsync(Path.Combine(next, "authorized_keys"), [OssuaryAuthorizedKeys.FormatLine(keptClient.PublicKey)]);
        Directory.Move(keys, Path.Combine(_folder, "keys.old"));
        Directory.Move(next, keys);

        await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 1);
        await using OssuaryClientConnection revoked = await OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(revokedClient, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(revoked);
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(keptClient, serverKey.PublicKey))).DisposeAsync();
    }

    [Fact]
    public async Task AFolderRenamedAwayAdmitsNobodyFromItsFile()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var client = OssuaryIdentity.Generate();
        string keys = Path.Combine(_folder, "keys");
        string file = Path.Combine(keys, "authorized_keys");
        Directory.CreateDirectory(keys);
        await File.WriteAllLinesAsync(file, [OssuaryAuthorizedKeys.FormatLine(client.PublicKey)]);
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, file, logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());

        Directory.Move(keys, Path.Combine(_folder, "keys.old"));

        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 23)); // the file is gone from its path
        await using OssuaryClientConnection refused = await OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(client, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(refused);
    }
}
