using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A configuration reload naming an identity key file whose open never returns (a named pipe nobody
/// writes to; a hung network share does the same): it must hold up neither a revocation from the
/// authorized-keys file nor the host's shutdown.
/// </summary>
public sealed class BlockingKeyFileReloadTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-blocking-key-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AServerKeyFileThatIsANamedPipeOnReloadIsRefusedAndRevocationAndShutdownGoOn()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var keptKey = OssuaryIdentity.Generate();
        using var revokedKey = OssuaryIdentity.Generate();
        string keyFile = Path.Combine(_folder, "server.key");
        OssuarySecretKeyFile.Write(keyFile, serverKey);
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
        string pipe = await MakeFifoAsync(Path.Combine(_folder, "next.key"));
        bool stopped = false;
        try
        {
            var endpoint = new IPEndPoint(IPAddress.Loopback, server.Host.Port());
            await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(revokedKey, serverKey.PublicKey))).DisposeAsync();

            // The reload runs the listeners on the thread that reloads (a file source's watcher thread): not the test's.
            settings["Ossuary:IdentityKeyFile"] = pipe;
            Task reloading = Task.Run(server.Configuration.Reload);
            await HostilePeerTests.WaitForAsync(() => reloading.IsCompleted || logs.Collector.GetSnapshot().Any(r => r.Id.Id == 27));

            string draft = file + ".new";
            await File.WriteAllLinesAsync(draft, [OssuaryAuthorizedKeys.FormatLine(keptKey.PublicKey)]);
            File.Move(draft, file, overwrite: true);
            await AuthorizedKeysFileServer.WaitForReloadAsync(logs, 1);

            await Echo.AssertRefusedAndServedAsync(endpoint, refused: revokedKey, served: keptKey, serverKey.PublicKey); // its key kept
            FakeLogRecord kept = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == 27);
            Assert.Equal(LogLevel.Error, kept.Level);
            Assert.Contains(pipe, kept.Message);
            Assert.Contains("named pipe", kept.Exception?.Message);
            await reloading.Within();
            await server.DisposeAsync().AsTask().Within(); // stops, nothing left waiting on the pipe
            stopped = true;
        }
        finally
        {
            Unblock(pipe);
            if (!stopped)
            {
                // Bounded: the test has failed already, and a server stuck on the pipe may never stop.
                await Task.WhenAny(server.DisposeAsync().AsTask(), Task.Delay(TestTimeout.Default));
            }
        }
    }

    [Fact]
    public async Task AClientKeyFileThatIsANamedPipeOnReloadIsRefusedAndTheRestOfTheChangeTakesEffect()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var otherServerKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartEchoAsync(serverKey, clientKey.PublicKey);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        string keyFile = Path.Combine(_folder, "client.key");
        OssuarySecretKeyFile.Write(keyFile, clientKey);
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = keyFile,
            ["Ossuary:TrustedServerKeys:0"] = serverKey.PublicKey.ToString(),
        };
        IConfigurationRoot configuration = new ConfigurationBuilder().Add(new MutableSource(settings)).Build();
        var services = new ServiceCollection();
        services.AddOssuaryClient(configuration.GetSection("Ossuary"));
        ServiceProvider provider = services.BuildServiceProvider();
        OssuaryConnectionFactory factory = provider.GetRequiredService<OssuaryConnectionFactory>();
        await using (await factory.ConnectAsync(endpoint).AsTask().Within())
        {
        }

        string pipe = await MakeFifoAsync(Path.Combine(_folder, "next.key"));
        bool disposed = false;
        try
        {
            // One change: a new key file, not a regular one, and the server's key no longer trusted.
            settings["Ossuary:IdentityKeyFile"] = pipe;
            settings["Ossuary:TrustedServerKeys:0"] = otherServerKey.PublicKey.ToString();
            await Task.Run(configuration.Reload).Within();

            OssuaryException untrusted = await Assert.ThrowsAsync<OssuaryException>(() => factory.ConnectAsync(endpoint).AsTask().Within());
            Assert.Equal(OssuaryErrorReason.UntrustedServer, untrusted.Reason);
            await Task.Run(() => provider.DisposeAsync().AsTask()).Within(); // nothing left waiting on the pipe
            disposed = true;
        }
        finally
        {
            Unblock(pipe);
            if (!disposed)
            {
                // Bounded, and off this thread: a factory stuck on the pipe blocks its disposal synchronously.
                await Task.WhenAny(Task.Run(() => provider.DisposeAsync().AsTask()), Task.Delay(TestTimeout.Default));
            }
        }
    }

    [Fact]
    public async Task AKeyFileThatIsANamedPipeOnTheReloadOfAServerWithoutOneIsRefusedAndTheHostStops()
    {
        // No key file in force (an unauthenticated server's generated key). The options validator read the
        // one the change named itself, on the configuration's reload thread: the pipe's open held that thread
        // (and every later change of the configuration) for ever, and the host's stop waited for the options
        // monitor's listener. On a reload it now reads no file; the running server refuses the pipe.
        var settings = new Dictionary<string, string?> { ["Ossuary:Mode"] = "Unauthenticated" };
        var logs = new FakeLoggerProvider();
        ConfiguredEchoServer server = await ConfiguredEchoServer.StartAsync(settings, logs);
        string pipe = await MakeFifoAsync(Path.Combine(_folder, "next.key"));
        bool stopped = false;
        try
        {
            settings["Ossuary:IdentityKeyFile"] = pipe;
            Task reloading = Task.Run(server.Configuration.Reload);
            await reloading.ContinueWith(static _ => { }, TaskScheduler.Default).Within(); // refused (the monitor throws it), not waiting

            await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 24));
            FakeLogRecord refused = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == 24);
            Assert.Contains("named pipe", refused.Exception?.Message);
            Assert.Contains(pipe, refused.Exception?.Message);
            await server.DisposeAsync().AsTask().Within();
            stopped = true;
        }
        finally
        {
            Unblock(pipe);
            if (!stopped)
            {
                await Task.WhenAny(server.DisposeAsync().AsTask(), Task.Delay(TestTimeout.Default));
            }
        }
    }

    [Fact]
    public async Task AServerKeyFileSwappedForANamedPipeAfterTheReloadCheckedItIsRefusedAndTheRestOfTheChangeApplied()
    {
        // The reload checks the new file's type by name, then opens the name: a named pipe renamed over it
        // in between was opened for reading, which waits for a writer. The server's reload waited with it,
        // for ever if none came, and every later change of its options waited behind that one.
        using var serverKey = OssuaryIdentity.Generate();
        using var nextKey = OssuaryIdentity.Generate();
        using var keptKey = OssuaryIdentity.Generate();
        using var revokedKey = OssuaryIdentity.Generate();
        string keyFile = Path.Combine(_folder, "server.key");
        OssuarySecretKeyFile.Write(keyFile, serverKey);
        string nextKeyFile = Path.Combine(_folder, "next.key");
        OssuarySecretKeyFile.Write(nextKeyFile, nextKey);
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = keyFile,
            ["Ossuary:AuthorizedClientKeys:0"] = keptKey.PublicKey.ToString(),
            ["Ossuary:AuthorizedClientKeys:1"] = revokedKey.PublicKey.ToString(),
        };
        var logs = new FakeLoggerProvider();
        ConfiguredEchoServer server = await ConfiguredEchoServer.StartAsync(settings, logs);
        string pipe = await MakeFifoAsync(Path.Combine(_folder, "pipe"));
        ReloadedKeyFile.Checked = path =>
        {
            if (path == nextKeyFile)
            {
                File.Move(pipe, nextKeyFile, overwrite: true);
            }
        };
        bool stopped = false;
        try
        {
            var endpoint = new IPEndPoint(IPAddress.Loopback, server.Host.Port());
            settings["Ossuary:IdentityKeyFile"] = nextKeyFile;
            settings.Remove("Ossuary:AuthorizedClientKeys:1");
            Task reloading = Task.Run(server.Configuration.Reload);

            await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 27));
            FakeLogRecord kept = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == 27);
            Assert.Equal(LogLevel.Error, kept.Level);
            Assert.Contains("named pipe", kept.Exception?.Message);
            await reloading.Within();
            await Echo.AssertRefusedAndServedAsync(endpoint, refused: revokedKey, served: keptKey, serverKey.PublicKey);

            await server.DisposeAsync().AsTask().Within();
            stopped = true;
        }
        finally
        {
            ReloadedKeyFile.Checked = null;
            Unblock(nextKeyFile);
            if (!stopped)
            {
                await Task.WhenAny(server.DisposeAsync().AsTask(), Task.Delay(TestTimeout.Default));
            }
        }
    }

    [Fact]
    public async Task AClientKeyFileSwappedForANamedPipeAfterTheReloadCheckedItIsRefusedAndTheRestOfTheChangeTakesEffect()
    {
        // As a server's: the connection factory's reload checks the new file's type by name, then opened the
        // name blocking. A named pipe renamed over it in between was opened for reading, which waits for a
        // writer: the reload (the configuration's reload thread) waited with it, for ever if none came.
        using var serverKey = OssuaryIdentity.Generate();
        using var otherServerKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        using var nextKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartEchoAsync(serverKey, clientKey.PublicKey);
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        string keyFile = Path.Combine(_folder, "client.key");
        OssuarySecretKeyFile.Write(keyFile, clientKey);
        string nextKeyFile = Path.Combine(_folder, "next.key");
        OssuarySecretKeyFile.Write(nextKeyFile, nextKey);
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = keyFile,
            ["Ossuary:TrustedServerKeys:0"] = serverKey.PublicKey.ToString(),
        };
        IConfigurationRoot configuration = new ConfigurationBuilder().Add(new MutableSource(settings)).Build();
        var logs = new FakeLoggerProvider();
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug));
        services.AddOssuaryClient(configuration.GetSection("Ossuary"));
        ServiceProvider provider = services.BuildServiceProvider();
        OssuaryConnectionFactory factory = provider.GetRequiredService<OssuaryConnectionFactory>();
        await using (await factory.ConnectAsync(endpoint).AsTask().Within())
        {
        }

        string pipe = await MakeFifoAsync(Path.Combine(_folder, "pipe"));
        ReloadedKeyFile.Checked = path =>
        {
            if (path == nextKeyFile)
            {
                File.Move(pipe, nextKeyFile, overwrite: true);
            }
        };
        bool disposed = false;
        try
        {
            settings["Ossuary:IdentityKeyFile"] = nextKeyFile;
            settings["Ossuary:TrustedServerKeys:0"] = otherServerKey.PublicKey.ToString();
            await Task.Run(configuration.Reload).Within();

            FakeLogRecord kept = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == 27);
            Assert.Equal(LogLevel.Error, kept.Level);
            Assert.Contains("named pipe", kept.Exception?.Message);
            OssuaryException untrusted = await Assert.ThrowsAsync<OssuaryException>(() => factory.ConnectAsync(endpoint).AsTask().Within());
            Assert.Equal(OssuaryErrorReason.UntrustedServer, untrusted.Reason);
            await Task.Run(() => provider.DisposeAsync().AsTask()).Within(); // nothing left waiting on the pipe
            disposed = true;
        }
        finally
        {
            ReloadedKeyFile.Checked = null;
            Unblock(nextKeyFile);
            if (!disposed)
            {
                await Task.WhenAny(Task.Run(() => provider.DisposeAsync().AsTask()), Task.Delay(TestTimeout.Default));
            }
        }
    }

    private static async Task<string> MakeFifoAsync(string path)
    {
        using var mkfifo = System.Diagnostics.Process.Start("mkfifo", ["-m", "600", path]);
        await mkfifo.WaitForExitAsync().Within();
        Assert.Equal(0, mkfifo.ExitCode);
        return path;
    }

    /// <summary>
    /// Lets whatever still waits to open <paramref name="pipe"/> go (the server, when it failed): opened for
    /// reading and writing, a FIFO opens at once on Linux, and its close gives that reader an end of file.
    /// </summary>
    private static void Unblock(string pipe)
    {
        using var _ = new FileStream(pipe, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);
    }
}
