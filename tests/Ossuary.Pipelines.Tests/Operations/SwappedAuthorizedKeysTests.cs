using System.Net;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// An authorized-keys file that is a symlink whose target is swapped, as Kubernetes updates a
/// mounted ConfigMap or Secret: <c>keys -> ..data/keys</c>, and <c>..data</c> is renamed to point
/// at a new timestamped folder. Nothing named <c>keys</c> changes in the watched folder. And the
/// file's whole folder swapped by renames (mv keys keys.old; mv keys.new keys): no name in the
/// watched folder changes either, and the watch follows the old folder to its new name.
/// </summary>
public sealed class SwappedAuthorizedKeysTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-swap-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AKeyRemovedByAnAtomicSwapOfTheSymlinkedFolderIsRefusedOnTheNextConnection()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var keptKey = OssuaryIdentity.Generate();
        using var revokedKey = OssuaryIdentity.Generate();
        Publish("v1", keptKey, revokedKey);
        File.CreateSymbolicLink(Path.Combine(_folder, "..data"), "v1");
        string file = Path.Combine(_folder, "authorized_keys");
        File.CreateSymbolicLink(file, Path.Combine("..data", "authorized_keys"));
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, file, logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(revokedKey, serverKey.PublicKey))).DisposeAsync();

        // The kubelet's update: a new folder, a new link to it, renamed over ..data in one step.
        Publish("v2", keptKey);
        File.CreateSymbolicLink(Path.Combine(_folder, "..data_tmp"), "v2");
        await RenameAsync(Path.Combine(_folder, "..data_tmp"), Path.Combine(_folder, "..data"));
        Assert.Single(OssuaryAuthorizedKeys.Load(file)); // the file, read through its link, lists one key now
        await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 1);

        await Echo.AssertRefusedAndServedAsync(endpoint, refused: revokedKey, served: keptKey, serverKey.PublicKey);
    }

    [Fact]
    public async Task AKeyRemovedBySwappingALinkedFolderOnTheFilesPathIsRefused()
    {
        // A release-style deployment: current -> releases/v1, swapped to v2 by renaming a new link
        // over it (ln -sfn). The file is no link; a folder on its path is. Nothing in the watched
        // folder (v1 still) changes, and the parent sees a link renamed, which no folder watch reports.
        using var serverKey = OssuaryIdentity.Generate();
        using var keptKey = OssuaryIdentity.Generate();
        using var revokedKey = OssuaryIdentity.Generate();
        Publish("v1", keptKey, revokedKey);
        Directory.CreateSymbolicLink(Path.Combine(_folder, "current"), "v1");
        string file = Path.Combine(_folder, "current", "authorized_keys");
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, file, logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(revokedKey, serverKey.PublicKey))).DisposeAsync();

        Publish("v2", keptKey);
        Directory.CreateSymbolicLink(Path.Combine(_folder, "current.tmp"), "v2");
        await RenameAsync(Path.Combine(_folder, "current.tmp"), Path.Combine(_folder, "current"));
        Assert.Single(OssuaryAuthorizedKeys.Load(file)); // the path leads to v2's file now
        await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 1);

        await Echo.AssertRefusedAndServedAsync(endpoint, refused: revokedKey, served: keptKey, serverKey.PublicKey);
    }

    [Fact]
    public async Task AKeyRemovedFromTheTargetOfALinkInAnotherFolderIsRefused()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var keptKey = OssuaryIdentity.Generate();
        using var revokedKey = OssuaryIdentity.Generate();
        Publish("config", keptKey, revokedKey);
        string file = Path.Combine(Directory.CreateDirectory(Path.Combine(_folder, "etc")).FullName, "authorized_keys");
        File.CreateSymbolicLink(file, Path.Combine("..", "config", "authorized_keys")); // etc/authorized_keys -> ../config/authorized_keys
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, file, logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(revokedKey, serverKey.PublicKey))).DisposeAsync();

        // The file is edited where it lives (replaced atomically, as advised); nothing in etc/ changes.
        string target = Path.Combine(_folder, "config", "authorized_keys");
        await File.WriteAllLinesAsync(target + ".new", [OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey)]);
        File.Move(target + ".new", target, overwrite: true);
        Assert.Single(OssuaryAuthorizedKeys.Load(file));
        await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 1);

        await Echo.AssertRefusedAndServedAsync(endpoint, refused: revokedKey, served: keptKey, serverKey.PublicKey);
    }

    [Fact]
    public async Task ALinksTargetDeletedAdmitsNobodyFromIt()
    {
        // A link left dangling is a file that is not there (File.Exists still finds the link).
        using var serverKey = OssuaryIdentity.Generate();
        using var client = OssuaryIdentity.Generate();
        Publish("config", client);
        string file = Path.Combine(Directory.CreateDirectory(Path.Combine(_folder, "etc")).FullName, "authorized_keys");
        File.CreateSymbolicLink(file, Path.Combine("..", "config", "authorized_keys"));
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, file, logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(client, serverKey.PublicKey))).DisposeAsync();

        File.Delete(Path.Combine(_folder, "config", "authorized_keys"));

        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 23));
        await using OssuaryClientConnection refused = await OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(client, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(refused);
        Assert.DoesNotContain(logs.Collector.GetSnapshot(), r => r.Id.Id == 22);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task ALinksTargetDeletedWhileItWasRefusedAdmitsNobodyFromIt()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var client = OssuaryIdentity.Generate();
        Publish("config", client);
        string file = Path.Combine(Directory.CreateDirectory(Path.Combine(_folder, "etc")).FullName, "authorized_keys");
        File.CreateSymbolicLink(file, Path.Combine("..", "config", "authorized_keys"));
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, file, logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());

        // Made group-writable where it lives: refused, and the keys read before it stay (event 22).
        string target = Path.Combine(_folder, "config", "authorized_keys");
        File.SetUnixFileMode(target, File.GetUnixFileMode(target) | UnixFileMode.GroupWrite);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 22));
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(client, serverKey.PublicKey))).DisposeAsync();

        // Then deleted (the operator's way to admit nobody from it): a deleted file admits nobody.
        File.Delete(target);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 23));
        await using OssuaryClientConnection refused = await OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(client, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(refused);
    }

    [Fact]
    public async Task AKeyLeftOutOfAFolderSwappedInByRenameIsRefused()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var keptClient = OssuaryIdentity.Generate();
        using var revokedClient = OssuaryIdentity.Generate();
        Publish("keys", keptClient, revokedClient);
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, Path.Combine(_folder, "keys", "authorized_keys"), logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(revokedClient, serverKey.PublicKey))).DisposeAsync();

        Publish("keys.new", keptClient);
        Directory.Move(Path.Combine(_folder, "keys"), Path.Combine(_folder, "keys.old"));
        Directory.Move(Path.Combine(_folder, "keys.new"), Path.Combine(_folder, "keys"));

        await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 1);
        await Echo.AssertRefusedAndServedAsync(endpoint, refused: revokedClient, served: keptClient, serverKey.PublicKey);
    }

    [Fact]
    public async Task AFolderRenamedAwayAdmitsNobodyFromItsFile()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var client = OssuaryIdentity.Generate();
        Publish("keys", client);
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, Path.Combine(_folder, "keys", "authorized_keys"), logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());

        Directory.Move(Path.Combine(_folder, "keys"), Path.Combine(_folder, "keys.old"));

        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 23)); // the file is gone from its path
        await using OssuaryClientConnection refused = await OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(client, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(refused);
    }

    /// <summary>rename(2) of a link over a link, which File.Move refuses for a link to a folder.</summary>
    private static async Task RenameAsync(string from, string to)
    {
        using var mv = System.Diagnostics.Process.Start("mv", ["-T", "-f", from, to]);
        await mv.WaitForExitAsync().Within();
        Assert.Equal(0, mv.ExitCode);
    }

    private void Publish(string version, params OssuaryIdentity[] clients)
    {
        string folder = Directory.CreateDirectory(Path.Combine(_folder, version)).FullName;
        File.WriteAllLines(Path.Combine(folder, "authorized_keys"), clients.Select(c => OssuaryAuthorizedKeys.FormatLine(c.PublicKey)));
    }
}
