using System.Net;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A configuration reload whose identity key file is a regular file that cannot be opened yet (a hung NFS
/// or FUSE mount: here a file under a lease, see <see cref="LeasedFile"/>, which the kernel holds every
/// open of). No check of the file's type can tell; the reload waits on it, and that wait must hold up
/// neither a revocation from the authorized-keys file nor the host's shutdown.
/// </summary>
public sealed class HungKeyFileReloadTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-hung-key-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task ARevocationAndTheHostsStopGoOnWhileAReloadedServerKeyFileCannotBeOpened()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var nextKey = OssuaryIdentity.Generate();
        using var keptKey = OssuaryIdentity.Generate();
        using var revokedKey = OssuaryIdentity.Generate();
        string keyFile = Path.Combine(_folder, "server.key");
        OssuarySecretKeyFile.Write(keyFile, serverKey);
        string nextKeyFile = Path.Combine(_folder, "next.key");
        OssuarySecretKeyFile.Write(nextKeyFile, nextKey);
        string file = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllLinesAsync(file, [
            OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey),
            OssuaryAuthorizedKeys.FormatLine(revokedKey.PublicKey),
        ]);
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = keyFile,
            ["Ossuary:AuthorizedKeysFile"] = file,
        };
        var logs = new FakeLoggerProvider();
        ConfiguredEchoServer server = await ConfiguredEchoServer.StartAsync(settings, logs);
        var hung = new LeasedFile(nextKeyFile);
        Task? reloading = null;
        bool stopped = false;
        try
        {
            var endpoint = new IPEndPoint(IPAddress.Loopback, server.Host.Port());
            await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(revokedKey, serverKey.PublicKey))).DisposeAsync();

            // A key rotation onto the hung file, on a thread of its own as a file source's reload is.
            settings["Ossuary:IdentityKeyFile"] = nextKeyFile;
            reloading = Task.Run(server.Configuration.Reload);
            await HostilePeerTests.WaitForAsync(() => hung.HoldsAnOpen);

            string draft = file + ".new";
            await File.WriteAllLinesAsync(draft, [OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey)]);
            File.Move(draft, file, overwrite: true);
            await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 1);
            await Echo.AssertRefusedAndServedAsync(endpoint, refused: revokedKey, served: keptKey, serverKey.PublicKey);
            Assert.True(hung.HoldsAnOpen, "the key file's open went on before the revocation was checked");

            await server.DisposeAsync().AsTask().Within();
            stopped = true;
            Assert.True(hung.HoldsAnOpen, "the key file's open went on before the host stopped");
        }
        finally
        {
            hung.Dispose(); // the reload's open goes on, into a server stopped or failed
            if (!stopped)
            {
                // Bounded: the test has failed already, and a server stuck on the file may not stop.
                await Task.WhenAny(server.DisposeAsync().AsTask(), Task.Delay(TestTimeout.Default));
            }
        }

        await reloading.Within(); // the late reload ends quietly on the stopped server
    }

    /// <summary>
    /// A file a reload names for the first time (a new authorized-keys file; an identity key file where the
    /// server presented a generated key) was read by the options validator, on the configuration's reload
    /// thread and inside the options monitor's change callback, which the host's stop waits for: the stop
    /// hung for as long as the file's open did. The running server reads such a file itself, where its stop
    /// does not wait for it.
    /// </summary>
    [Theory]
    [InlineData("AuthorizedKeysFile")]
    [InlineData("IdentityKeyFile")]
    public async Task TheHostStopsWhileAReloadsNewlyNamedKeyFileCannotBeOpened(string setting)
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        string next;
        Dictionary<string, string?> settings;
        if (setting == "AuthorizedKeysFile")
        {
            string file = Path.Combine(_folder, "authorized_keys");
            await File.WriteAllLinesAsync(file, [OssuaryAuthorizedKeys.FormatLine(clientKey.PublicKey)]);
            string keyFile = Path.Combine(_folder, "server.key");
            OssuarySecretKeyFile.Write(keyFile, serverKey);
            settings = new() { ["Ossuary:AuthorizedKeysFile"] = file, ["Ossuary:IdentityKeyFile"] = keyFile };
            next = Path.Combine(_folder, "next_authorized_keys");
            await File.WriteAllLinesAsync(next, [OssuaryAuthorizedKeys.FormatLine(clientKey.PublicKey)]);
        }
        else
        {
            settings = new() { ["Ossuary:Mode"] = "Unauthenticated" }; // a generated key until the file is read
            next = Path.Combine(_folder, "next.key");
            OssuarySecretKeyFile.Write(next, serverKey);
        }

        ConfiguredEchoServer server = await ConfiguredEchoServer.StartAsync(settings);
        var hung = new LeasedFile(next);
        Task? reloading = null;
        bool stopped = false;
        try
        {
            settings["Ossuary:" + setting] = next;
            reloading = Task.Run(server.Configuration.Reload); // on a thread of its own, as a file source's reload is
            await HostilePeerTests.WaitForAsync(() => hung.HoldsAnOpen);

            await server.DisposeAsync().AsTask().Within();
            stopped = true;
            Assert.True(hung.HoldsAnOpen, "the key file's open went on before the host stopped");
        }
        finally
        {
            hung.Dispose();
            if (!stopped)
            {
                await Task.WhenAny(server.DisposeAsync().AsTask(), Task.Delay(TestTimeout.Default));
            }
        }

        await reloading.Within(); // the late reload ends quietly on the stopped server
    }
}
