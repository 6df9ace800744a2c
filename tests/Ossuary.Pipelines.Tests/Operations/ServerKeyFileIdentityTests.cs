using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A server's plan is shared by every handshake and rebuilt on each reload: the identity it read from
/// <c>IdentityKeyFile</c> is zeroed once the plan has been replaced (or the host stopped) and the
/// handshakes that took it are over, not left in memory for the finalizer. An identity the
/// application supplied as an object is never disposed by the library.
/// </summary>
public sealed class ServerKeyFileIdentityTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-server-keyfile-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AReloadZeroesTheReplacedKeyFilesIdentityButNotAnIdentityTheApplicationSupplied()
    {
        using var oldKey = new KeyFileSeed(_folder, "old.key");
        using var newKey = new KeyFileSeed(_folder, "new.key");
        using var givenKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        var settings = new Dictionary<string, string?>
        {
            ["FromFile:IdentityKeyFile"] = oldKey.Path,
            ["FromFile:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString(),
            ["Given:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString(),
        };
        IConfigurationRoot configuration = new ConfigurationBuilder().Add(new MutableSource(settings)).Build();
        await using KestrelHost host = await KestrelHost.StartAsync(
            k =>
            {
                k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary("FromFile").UseConnectionHandler<EchoConnectionHandler>());
                k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary("Given").UseConnectionHandler<EchoConnectionHandler>());
            },
            builder =>
            {
                builder.Services.AddOssuaryServer(configuration.GetSection("FromFile"), "FromFile");
                builder.Services.AddOssuaryServer(configuration.GetSection("Given"), "Given").Configure(o => o.Identity = givenKey);
            });
        var fromFile = new IPEndPoint(IPAddress.Loopback, host.Port(0));
        var given = new IPEndPoint(IPAddress.Loopback, host.Port(1));
        await (await Echo.ConnectAndEchoAsync(fromFile, Echo.ClientOptions(clientKey, oldKey.PublicKey))).DisposeAsync();
        await (await Echo.ConnectAndEchoAsync(given, Echo.ClientOptions(clientKey, givenKey.PublicKey))).DisposeAsync();

        settings["FromFile:IdentityKeyFile"] = newKey.Path;
        configuration.Reload(); // both listeners' plans are rebuilt

        await (await Echo.ConnectAndEchoAsync(fromFile, Echo.ClientOptions(clientKey, newKey.PublicKey))).DisposeAsync();
        await (await Echo.ConnectAndEchoAsync(given, Echo.ClientOptions(clientKey, givenKey.PublicKey))).DisposeAsync();
        Assert.NotEqual(0, newKey.CopiesInMemory()); // the search finds a key in force
        Assert.Equal(0, oldKey.CopiesInMemory());
        AssertStillSigns(givenKey);
    }

    [Fact]
    public async Task AHandshakeUnderWayAcrossAReloadSignsWithTheOldKeyWhichIsZeroedOnlyAfterIt()
    {
        using var oldKey = new KeyFileSeed(_folder, "old.key");
        using var newKey = new KeyFileSeed(_folder, "new.key");
        using var clientKey = OssuaryIdentity.Generate();
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = oldKey.Path,
            ["Ossuary:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString(),
        };
        IConfigurationRoot configuration = new ConfigurationBuilder().Add(new MutableSource(settings)).Build();
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary().UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                builder.Services.AddOssuaryServer(configuration.GetSection("Ossuary"));
                builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug);
            });
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());

        // A client whose ClientHello waits at a gate: the server has taken its plan, and signs nothing yet.
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(endpoint).Within();
        var gated = new GatedStream(tcp.GetStream());
        gated.Shut();
        await using var held = new OssuaryStream(gated);
        Task handshake = held.AuthenticateAsClientAsync(Echo.ClientOptions(clientKey, oldKey.PublicKey));
        await gated.Waiting.Within();
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Category == "Ossuary.Pipelines.Server" && r.Id.Id == 1));

        settings["Ossuary:IdentityKeyFile"] = newKey.Path;
        configuration.Reload();
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(clientKey, newKey.PublicKey))).DisposeAsync();
        Assert.NotEqual(0, oldKey.CopiesInMemory()); // the held handshake still needs it

        gated.Open();
        await handshake.Within();
        Assert.Equal(oldKey.PublicKey, held.Connection!.RemotePublicKey);
        await held.WriteAsync("held"u8.ToArray()).AsTask().Within();
        byte[] echoed = new byte[4];
        await held.ReadExactlyAsync(echoed).AsTask().Within(); // the echo handler runs once the server's handshake is over
        Assert.Equal("held"u8.ToArray(), echoed);
        Assert.Equal(0, oldKey.CopiesInMemory());
    }

    [Fact]
    public async Task StoppingTheHostZeroesTheKeyFilesIdentityButNotAnIdentityTheApplicationSupplied()
    {
        using var fileKey = new KeyFileSeed(_folder, "server.key");
        using var givenKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        KestrelHost host = await KestrelHost.StartAsync(k =>
        {
            k.Listen(IPAddress.Loopback, 0, listen => listen
                .UseOssuary(o =>
                {
                    o.IdentityKeyFile = fileKey.Path;
                    o.AuthorizedClientKeys.Add(clientKey.PublicKey);
                })
                .UseConnectionHandler<EchoConnectionHandler>());
            k.Listen(IPAddress.Loopback, 0, listen => listen
                .UseOssuary(o =>
                {
                    o.Identity = givenKey;
                    o.AuthorizedClientKeys.Add(clientKey.PublicKey);
                })
                .UseConnectionHandler<EchoConnectionHandler>());
        });
        try
        {
            await (await Echo.ConnectAndEchoAsync(new IPEndPoint(IPAddress.Loopback, host.Port(0)), Echo.ClientOptions(clientKey, fileKey.PublicKey))).DisposeAsync();
            await (await Echo.ConnectAndEchoAsync(new IPEndPoint(IPAddress.Loopback, host.Port(1)), Echo.ClientOptions(clientKey, givenKey.PublicKey))).DisposeAsync();
            Assert.NotEqual(0, fileKey.CopiesInMemory());
        }
        finally
        {
            await host.DisposeAsync();
        }

        Assert.Equal(0, fileKey.CopiesInMemory());
        AssertStillSigns(givenKey);
    }

    internal static void AssertStillSigns(OssuaryIdentity identity)
    {
        Span<byte> signature = stackalloc byte[64];
        identity.Sign(signature, "still the application's"u8); // throws ObjectDisposedException once disposed
    }
}
