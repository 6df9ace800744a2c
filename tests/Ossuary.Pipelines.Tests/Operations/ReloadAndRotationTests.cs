using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>Issue 14, item 4: allow-lists reload and server keys rotate without a restart.</summary>
public sealed class ReloadAndRotationTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-reload-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AKeyRemovedFromTheWatchedAuthorizedKeysFileIsRefusedOnTheNextConnection()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var keptKey = OssuaryIdentity.Generate();
        using var revokedKey = OssuaryIdentity.Generate();
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllLinesAsync(file, [
            OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey, "sensor-1"),
            OssuaryAuthorizedKeys.FormatLine(revokedKey.PublicKey, "sensor-2 (lost)"),
        ]);
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, file, logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        await using OssuaryClientConnection before = await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(revokedKey, serverKey.PublicKey));

        await File.WriteAllLinesAsync(file, [OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey, "sensor-1")]);
        await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 1);

        await Echo.AssertRefusedAndServedAsync(endpoint, refused: revokedKey, served: keptKey, serverKey.PublicKey);
        await Echo.RoundTripAsync(before, "an established connection is not cut"); // revocation applies to handshakes
    }

    [Fact]
    public async Task AKeyRemovedFromTheWatchedFileIsRefusedWhileTheServersOwnKeyFileCannotBeReadAgain()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var keptKey = OssuaryIdentity.Generate();
        using var revokedKey = OssuaryIdentity.Generate();
        string keyFile = WriteKeyFile(serverKey);
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllLinesAsync(file, [
            OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey),
            OssuaryAuthorizedKeys.FormatLine(revokedKey.PublicKey),
        ]);
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen
                .UseOssuary(o =>
                {
                    o.IdentityKeyFile = keyFile;
                    o.AuthorizedKeysFile = file;
                })
                .UseConnectionHandler<EchoConnectionHandler>()),
            builder => builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug));
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());

        // The server read its key at start-up; the file has since gone (or become unreadable).
        // Revoking a client must not depend on reading it again.
        File.Delete(keyFile);
        string draft = file + ".new";
        await File.WriteAllLinesAsync(draft, [OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey)]);
        File.Move(draft, file, overwrite: true);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id is 21 or 22));

        await Echo.AssertRefusedAndServedAsync(endpoint, refused: revokedKey, served: keptKey, serverKey.PublicKey);
        Assert.DoesNotContain(logs.Collector.GetSnapshot(), r => r.Id.Id == 22);
    }

    [Fact]
    public async Task AKeyRemovedWhileTheServerIsStillStartingIsRefused()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var keptKey = OssuaryIdentity.Generate();
        using var revokedKey = OssuaryIdentity.Generate();
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllLinesAsync(file, [
            OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey),
            OssuaryAuthorizedKeys.FormatLine(revokedKey.PublicKey),
        ]);

        // The server key comes through a pipe, so that start-up waits, between reading the
        // authorized-keys file and anything after it, until the test has changed that file (a slow
        // key file, on a network share say, widens the same gap).
        string keyFile = Path.Combine(_folder, "server.key");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", ["-m", "600", keyFile]))
        {
            await mkfifo.WaitForExitAsync().Within();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        var logs = new FakeLoggerProvider();
        Task<KestrelHost> starting = Task.Run(() => KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen
                .UseOssuary(o =>
                {
                    o.IdentityKeyFile = keyFile;
                    o.AuthorizedKeysFile = file;
                })
                .UseConnectionHandler<EchoConnectionHandler>()),
            builder => builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug)));
        await using (FileStream key = await Task.Run(() => new FileStream(keyFile, FileMode.Open, FileAccess.Write)).Within()) // opens once the server reads
        {
            string draft = file + ".new";
            await File.WriteAllLinesAsync(draft, [OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey)]);
            File.Move(draft, file, overwrite: true);
            char[] hex = new char[OssuaryIdentity.SeedSize * 2];
            serverKey.TryFormatSeedHex(hex, out _);
            await key.WriteAsync(System.Text.Encoding.ASCII.GetBytes(hex));
        }

        await using KestrelHost host = await starting.Within();
        await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 1); // the change was seen, if late
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        await Echo.AssertRefusedAndServedAsync(endpoint, refused: revokedKey, served: keptKey, serverKey.PublicKey);
    }

    [Fact]
    public async Task AKeyRemovedFromTheWatchedFileIsRefusedAfterTheOptionsObjectNamesAnotherFile()
    {
        // The options are "validated and copied" by UseOssuary, but the watcher compared its events
        // with the caller's object: one reused for the next listener with another file made every
        // change of this listener's file "a file the options no longer name", and a revoked key stayed admitted.
        using var serverKey = OssuaryIdentity.Generate();
        using var keptKey = OssuaryIdentity.Generate();
        using var revokedKey = OssuaryIdentity.Generate();
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllLinesAsync(file, [OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey), OssuaryAuthorizedKeys.FormatLine(revokedKey.PublicKey)]);
        string otherFile = Path.Combine(_folder, "operators_keys");
        await File.WriteAllLinesAsync(otherFile, [OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey)]);
        var logs = new FakeLoggerProvider();
        var options = new OssuaryServerOptions { Identity = serverKey, AuthorizedKeysFile = file };
        await using KestrelHost host = await KestrelHost.StartAsync(
            k =>
            {
                k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary(options).UseConnectionHandler<EchoConnectionHandler>());
                options.AuthorizedKeysFile = otherFile; // the same object, for the next listener
                k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary(options).UseConnectionHandler<EchoConnectionHandler>());
            },
            builder => builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug));
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port(0));

        await File.WriteAllLinesAsync(file, [OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey)]);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 21 && r.Message.Contains(file, StringComparison.Ordinal)));

        await using OssuaryClientConnection revoked = await OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(revokedKey, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(revoked);
    }

    [Fact]
    public async Task AKeyAddedToTheOptionsObjectAfterUseOssuaryIsNotAdmittedWhenTheWatchedFileChanges()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var fileKey = OssuaryIdentity.Generate();
        using var laterKey = OssuaryIdentity.Generate();
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllLinesAsync(file, [OssuaryAuthorizedKeys.FormatLine(fileKey.PublicKey)]);
        var logs = new FakeLoggerProvider();
        var options = new OssuaryServerOptions { Identity = serverKey, AuthorizedKeysFile = file };
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary(options).UseConnectionHandler<EchoConnectionHandler>()),
            builder => builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug));
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        options.AuthorizedClientKeys.Add(laterKey.PublicKey); // "later changes to this object have no effect"

        using var another = OssuaryIdentity.Generate();
        await File.WriteAllLinesAsync(file, [OssuaryAuthorizedKeys.FormatLine(fileKey.PublicKey), OssuaryAuthorizedKeys.FormatLine(another.PublicKey)]);
        await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 2);

        await using OssuaryClientConnection later = await OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(laterKey, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(later);
    }

    [Fact]
    public async Task AMalformedAuthorizedKeysFileKeepsThePreviousKeysAndLogsAnError()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllTextAsync(file, clientKey.PublicKey + "\n");
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, file, logs);

        // Replaced atomically, as the README advises: written in place, the file is empty for a moment
        // (which admits nobody, failing closed) before it is malformed.
        string draft = file + ".new";
        await File.WriteAllTextAsync(draft, "this is not a key\n");
        File.Move(draft, file, overwrite: true);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 22));

        FakeLogRecord failed = logs.Collector.GetSnapshot().First(r => r.Id.Id == 22);
        Assert.Equal(LogLevel.Error, failed.Level);
        await (await Echo.ConnectAndEchoAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), Echo.ClientOptions(clientKey, serverKey.PublicKey))).DisposeAsync();
    }

    [Fact]
    public async Task ADeletedAuthorizedKeysFileIsLoggedAtErrorAsTheOperatorsToFix()
    {
        // Every client the file admitted is refused from then on: the failure is ours (the server's
        // configuration, which only the operator can fix), so it is Error as a malformed file (22) is,
        // not a Warning that a log filtered at Error drops while the devices are all refused.
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllTextAsync(file, clientKey.PublicKey + "\n");
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, file, logs);

        File.Delete(file);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 23));

        FakeLogRecord gone = logs.Collector.GetSnapshot().First(r => r.Id.Id == 23);
        Assert.Equal(LogLevel.Error, gone.Level);
        Assert.Contains("authorized_keys", gone.Message);
        await using OssuaryClientConnection refused = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), Echo.ClientOptions(clientKey, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(refused);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task AnAuthorizedKeysFileOthersMayWriteKeepsThePreviousKeysAndLogsAnError()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        using var intruderKey = OssuaryIdentity.Generate();
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllTextAsync(file, clientKey.PublicKey + "\n");
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, file, logs);

        // A file anyone may write, with a key in it that anyone could have put there.
        string draft = file + ".new";
        await File.WriteAllTextAsync(draft, intruderKey.PublicKey + "\n");
        File.SetUnixFileMode(draft, File.GetUnixFileMode(draft) | UnixFileMode.OtherWrite);
        File.Move(draft, file, overwrite: true);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 22));

        FakeLogRecord failed = logs.Collector.GetSnapshot().First(r => r.Id.Id == 22);
        Assert.Equal(LogLevel.Error, failed.Level);
        Assert.IsType<UnauthorizedAccessException>(failed.Exception);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(clientKey, serverKey.PublicKey))).DisposeAsync();
        await using OssuaryClientConnection intruder = await OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(intruderKey, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(intruder);

        // Made owner-only again, with no edit: the fix is seen, and the file's keys apply.
        File.SetUnixFileMode(file, File.GetUnixFileMode(file) & ~UnixFileMode.OtherWrite);
        await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 1);
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(intruderKey, serverKey.PublicKey))).DisposeAsync();
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task AnAuthorizedKeysFileOthersMayWriteIsRefusedAtStartUp()
    {
        using var serverKey = OssuaryIdentity.Generate();
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllTextAsync(file, serverKey.PublicKey + "\n");
        File.SetUnixFileMode(file, File.GetUnixFileMode(file) | UnixFileMode.GroupWrite);

        UnauthorizedAccessException refused = await Assert.ThrowsAsync<UnauthorizedAccessException>(
            () => AuthorizedKeysFileServer.StartAsync(serverKey, file, new FakeLoggerProvider()));

        Assert.Contains(file, refused.Message);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task AnAuthorizedKeysFileAnotherUserOwnsKeepsThePreviousKeysAndLogsAnError()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        using var intruderKey = OssuaryIdentity.Generate();
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllTextAsync(file, clientKey.PublicKey + "\n");
        string draft = file + ".new";
        await File.WriteAllTextAsync(draft, intruderKey.PublicKey + "\n");
        if (!ForeignOwner.TryGiveAway(draft))
        {
            ForeignOwner.AssertOwnersAreRead(draft);
            return;
        }

        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await AuthorizedKeysFileServer.StartAsync(serverKey, file, logs);

        // Owner-only, but another user's: they could put any key in it whenever they like.
        File.Move(draft, file, overwrite: true);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 22));

        FakeLogRecord failed = logs.Collector.GetSnapshot().First(r => r.Id.Id == 22);
        Assert.Equal(LogLevel.Error, failed.Level);
        Assert.IsType<UnauthorizedAccessException>(failed.Exception);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(clientKey, serverKey.PublicKey))).DisposeAsync();
        await using OssuaryClientConnection intruder = await OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(intruderKey, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(intruder);

        // Taken back, with no edit: the change of owner is seen, and the file's keys apply.
        using (var chown = System.Diagnostics.Process.Start("chown", ["0", file]))
        {
            await chown.WaitForExitAsync().Within();
            Assert.Equal(0, chown.ExitCode);
        }

        await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 1);
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(intruderKey, serverKey.PublicKey))).DisposeAsync();
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task AnAuthorizedKeysFileAnotherUserOwnsIsRefusedAtStartUp()
    {
        using var serverKey = OssuaryIdentity.Generate();
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllTextAsync(file, serverKey.PublicKey + "\n");
        if (!ForeignOwner.TryGiveAway(file))
        {
            ForeignOwner.AssertOwnersAreRead(file);
            return;
        }

        UnauthorizedAccessException refused = await Assert.ThrowsAsync<UnauthorizedAccessException>(
            () => AuthorizedKeysFileServer.StartAsync(serverKey, file, new FakeLoggerProvider()));

        Assert.Contains(file, refused.Message);
        Assert.Contains($"owned by user {ForeignOwner.Nobody}", refused.Message);
    }

    [Fact]
    public async Task AKeyRemovedFromConfigurationIsRefusedAfterTheReload()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        Dictionary<string, string?> settings = Settings(serverKey, clientKey);
        await using ConfiguredEchoServer server = await ConfiguredEchoServer.StartAsync(settings);
        var endpoint = new IPEndPoint(IPAddress.Loopback, server.Host.Port());
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(clientKey, serverKey.PublicKey))).DisposeAsync();

        using var replacementKey = OssuaryIdentity.Generate();
        settings["Ossuary:AuthorizedClientKeys:0"] = replacementKey.PublicKey.ToString();
        server.Configuration.Reload(); // what a reloadOnChange file source does when the file changes

        await Echo.AssertRefusedAndServedAsync(endpoint, refused: clientKey, served: replacementKey, serverKey.PublicKey);
    }

    [Fact]
    public async Task AKeyRemovedFromConfigurationIsRefusedWhileTheWatchedAuthorizedKeysFileIsAway()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var fileClient = OssuaryIdentity.Generate();
        using var revokedKey = OssuaryIdentity.Generate();
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllLinesAsync(file, [OssuaryAuthorizedKeys.FormatLine(fileClient.PublicKey)]);
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = WriteKeyFile(serverKey),
            ["Ossuary:AuthorizedKeysFile"] = file,
            ["Ossuary:AuthorizedClientKeys:0"] = revokedKey.PublicKey.ToString(),
        };
        var logs = new FakeLoggerProvider();
        await using ConfiguredEchoServer server = await ConfiguredEchoServer.StartAsync(settings, logs);
        var endpoint = new IPEndPoint(IPAddress.Loopback, server.Host.Port());
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(revokedKey, serverKey.PublicKey))).DisposeAsync();

        // The file is away for a while (a deployment replacing it, say): nobody is admitted from it,
        // as documented, and the server runs on. A key revoked in configuration meanwhile must go.
        File.Delete(file);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 23));
        settings.Remove("Ossuary:AuthorizedClientKeys:0");
        server.Configuration.Reload();

        await using OssuaryClientConnection revoked = await OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(revokedKey, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(revoked);

        await File.WriteAllLinesAsync(file, [OssuaryAuthorizedKeys.FormatLine(fileClient.PublicKey)]);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 21 && r.Message.EndsWith(": 1 keys.", StringComparison.Ordinal)));
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(fileClient, serverKey.PublicKey))).DisposeAsync();
    }

    [Fact]
    public async Task AnInvalidConfigurationChangeIsRejectedAndThePreviousOptionsStayInForce()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        Dictionary<string, string?> settings = Settings(serverKey, clientKey);
        await using ConfiguredEchoServer server = await ConfiguredEchoServer.StartAsync(settings);

        settings["Ossuary:AuthorizedClientKeys:0"] = "not hex"; // a bad edit
        Exception rejected = Assert.ThrowsAny<Exception>(server.Configuration.Reload);

        Assert.Contains("Ossuary:AuthorizedClientKeys:0", rejected.ToString());
        await (await Echo.ConnectAndEchoAsync(new IPEndPoint(IPAddress.Loopback, server.Host.Port()), Echo.ClientOptions(clientKey, serverKey.PublicKey))).DisposeAsync();
    }

    [Fact]
    public async Task AServerRotatesItsKeyThroughConfigurationAndClientsTrustingBothFollow()
    {
        // The fleet procedure of the README: clients trust old and new, then the server switches.
        using var oldKey = OssuaryIdentity.Generate();
        using var newKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        Dictionary<string, string?> settings = Settings(oldKey, clientKey);
        await using ConfiguredEchoServer server = await ConfiguredEchoServer.StartAsync(settings);
        var endpoint = new IPEndPoint(IPAddress.Loopback, server.Host.Port());
        var bothTrusted = Echo.ClientOptions(clientKey, oldKey.PublicKey, newKey.PublicKey);
        await using OssuaryClientConnection onOld = await Echo.ConnectAndEchoAsync(endpoint, bothTrusted);

        settings["Ossuary:IdentityKeyFile"] = WriteKeyFile(newKey);
        server.Configuration.Reload();

        await using OssuaryClientConnection onNew = await Echo.ConnectAndEchoAsync(endpoint, bothTrusted);
        Assert.Equal(oldKey.PublicKey, onOld.Ossuary.RemotePublicKey);
        Assert.Equal(newKey.PublicKey, onNew.Ossuary.RemotePublicKey);
        await Echo.RoundTripAsync(onOld, "still here"); // connections made before the switch carry on
        OssuaryException untrusted = await Assert.ThrowsAsync<OssuaryException>(() =>
            OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(clientKey, oldKey.PublicKey)).Within());
        Assert.Equal(OssuaryErrorReason.UntrustedServer, untrusted.Reason); // a client not yet updated notices
    }

    [Fact]
    public async Task TheIdentitySelectorServesTheOldAndNewKeyPerEndpointDuringTheOverlap()
    {
        using var oldKey = OssuaryIdentity.Generate();
        using var newKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        int newPort = 0;
        await using KestrelHost host = await KestrelHost.StartAsync(k =>
        {
            Action<Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions> secure = listen => listen
                .UseOssuary(o =>
                {
                    o.Identity = oldKey;
                    o.AuthorizedClientKeys.Add(clientKey.PublicKey);
                    o.IdentitySelector = connection =>
                        connection?.LocalEndPoint is IPEndPoint local && local.Port == Volatile.Read(ref newPort) ? newKey : null;
                })
                .UseConnectionHandler<EchoConnectionHandler>();
            k.Listen(IPAddress.Loopback, 0, secure);
            k.Listen(IPAddress.Loopback, 0, secure);
        });
        Volatile.Write(ref newPort, host.Port(1));

        await using OssuaryClientConnection onOld = await Echo.ConnectAndEchoAsync(
            new IPEndPoint(IPAddress.Loopback, host.Port(0)), Echo.ClientOptions(clientKey, oldKey.PublicKey));
        await using OssuaryClientConnection onNew = await Echo.ConnectAndEchoAsync(
            new IPEndPoint(IPAddress.Loopback, host.Port(1)), Echo.ClientOptions(clientKey, newKey.PublicKey));

        Assert.Equal(oldKey.PublicKey, onOld.Ossuary.RemotePublicKey);
        Assert.Equal(newKey.PublicKey, onNew.Ossuary.RemotePublicKey);
        Assert.Contains(host.Log.Features, f => f!.LocalPublicKey == newKey.PublicKey);
    }

    [Fact]
    public async Task AnIdentitySelectorThatThrowsEndsThatConnectionAndIsLoggedAtError()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen
                .UseOssuary(o =>
                {
                    o.Identity = serverKey;
                    o.AuthorizedClientKeys.Add(clientKey.PublicKey);
                    o.IdentitySelector = _ => throw new InvalidOperationException("the key vault is down");
                })
                .UseConnectionHandler<EchoConnectionHandler>()),
            builder => builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug));

        await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(
            new IPEndPoint(IPAddress.Loopback, host.Port()), Echo.ClientOptions(clientKey, serverKey.PublicKey)).Within());

        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 20));
        FakeLogRecord failed = logs.Collector.GetSnapshot().First(r => r.Id.Id == 20);
        Assert.Equal(LogLevel.Error, failed.Level);
        Assert.Equal("the key vault is down", failed.Exception?.Message);
    }

    [Fact]
    public void AnUnauthenticatedServerWithAnAuthorizedKeysFileIsRefusedAtStartUp()
    {
        var options = new Pipelines.Transport.OssuaryServerOptions { Mode = Pipelines.Transport.OssuaryServerMode.Unauthenticated, AuthorizedKeysFile = Path.Combine(_folder, "keys") };

        InvalidOperationException refused = Assert.Throws<InvalidOperationException>(options.Validate);

        Assert.Contains("AuthorizedKeysFile", refused.Message);
    }

    /// <summary>A configured server's settings: <paramref name="serverKey"/> in a key file, <paramref name="clientKey"/> admitted.</summary>
    private Dictionary<string, string?> Settings(OssuaryIdentity serverKey, OssuaryIdentity clientKey) => new()
    {
        ["Ossuary:IdentityKeyFile"] = WriteKeyFile(serverKey),
        ["Ossuary:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString(),
    };

    private string WriteKeyFile(OssuaryIdentity identity)
    {
        string path = Path.Combine(_folder, $"{Guid.NewGuid():N}.key");
        OssuarySecretKeyFile.Write(path, identity);
        return path;
    }
}
