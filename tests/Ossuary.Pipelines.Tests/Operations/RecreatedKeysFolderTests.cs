using System.Net;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>A deployment that replaces the authorized-keys file's whole folder (rm -r, then copy).</summary>
public sealed class RecreatedKeysFolderTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-refolder-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AKeyAddedInARecreatedFolderIsAdmitted()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var oldClient = OssuaryIdentity.Generate();
        using var newClient = OssuaryIdentity.Generate();
        string keys = Path.Combine(_folder, "keys");
        string file = Path.Combine(keys, "authorized_keys");
        Directory.CreateDirectory(keys);
        await File.WriteAllTextAsync(file, OssuaryAuthorizedKeys.FormatLine(oldClient.PublicKey) + "\n");
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, file, logs);

        Directory.Delete(keys, recursive: true);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 23));
        Directory.CreateDirectory(keys);
        await File.WriteAllTextAsync(file, OssuaryAuthorizedKeys.FormatLine(newClient.PublicKey) + "\n");
        await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 1);

        await (await Echo.ConnectAndEchoAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), Echo.ClientOptions(newClient, serverKey.PublicKey))).DisposeAsync();
    }
}
