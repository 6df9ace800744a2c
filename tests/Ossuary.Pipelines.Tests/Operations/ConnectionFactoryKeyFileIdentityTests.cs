using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A connection factory shares one plan among its connects and rebuilds it when its options change:
/// the identity it read from <c>IdentityKeyFile</c> is zeroed once the plan has been replaced (or the
/// factory disposed) and the handshakes that took it are over. An identity the application supplied
/// as an object is never disposed by the library.
/// </summary>
public sealed class ConnectionFactoryKeyFileIdentityTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-factory-keyfile-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AHandshakeUnderWayAcrossAReloadSignsWithTheOldKeyWhichIsZeroedOnlyAfterIt()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var oldKey = new KeyFileSeed(_folder, "old.key");
        using var newKey = new KeyFileSeed(_folder, "new.key");
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, listen => listen
            .UseOssuary(o =>
            {
                o.Identity = serverKey;
                o.AuthorizedClientKeys.Add(oldKey.PublicKey);
                o.AuthorizedClientKeys.Add(newKey.PublicKey);
            })
            .UseConnectionHandler<EchoConnectionHandler>()));
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        var settings = new Dictionary<string, string?> { ["Ossuary:IdentityKeyFile"] = oldKey.Path };
        IConfigurationRoot configuration = new ConfigurationBuilder().Add(new MutableSource(settings)).Build();

        // The client signs its ClientAuthentication after its trust decision: holding the decision holds the signature.
        var asked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var decided = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var services = new ServiceCollection();
        services.AddOssuaryClient(configuration.GetSection("Ossuary")).Configure(o => o.TrustServer = async (key, cancellationToken) =>
        {
            asked.TrySetResult();
            await decided.Task.WaitAsync(cancellationToken);
            return key == serverKey.PublicKey;
        });
        await using ServiceProvider provider = services.BuildServiceProvider();
        OssuaryConnectionFactory factory = provider.GetRequiredService<OssuaryConnectionFactory>();

        Task<ConnectionContext> held = factory.ConnectAsync(endpoint).AsTask();
        await asked.Task.Within();
        settings["Ossuary:IdentityKeyFile"] = newKey.Path;
        configuration.Reload();
        Assert.NotEqual(0, oldKey.CopiesInMemory()); // the held handshake still needs it

        decided.SetResult();
        await using ConnectionContext onOld = await held.Within();
        await Echo.RoundTripAsync(onOld, "admitted with the old key");
        Assert.Equal(oldKey.PublicKey, onOld.Features.Get<IOssuaryConnectionFeature>()!.LocalPublicKey);
        Assert.Equal(0, oldKey.CopiesInMemory());

        await using ConnectionContext onNew = await factory.ConnectAsync(endpoint).AsTask().Within();
        Assert.Equal(newKey.PublicKey, onNew.Features.Get<IOssuaryConnectionFeature>()!.LocalPublicKey);
    }

    [Fact]
    public async Task DisposingTheFactoryZeroesTheKeyFilesIdentityButNotAnIdentityTheApplicationSupplied()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var fileKey = new KeyFileSeed(_folder, "client.key");
        using var givenKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, listen => listen
            .UseOssuary(o =>
            {
                o.Identity = serverKey;
                o.AuthorizedClientKeys.Add(fileKey.PublicKey);
                o.AuthorizedClientKeys.Add(givenKey.PublicKey);
            })
            .UseConnectionHandler<EchoConnectionHandler>()));
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        var fromFile = new OssuaryClientOptions { IdentityKeyFile = fileKey.Path };
        fromFile.TrustedServerKeys.Add(serverKey.PublicKey);
        var withFile = new OssuaryConnectionFactory(fromFile);
        var withGiven = new OssuaryConnectionFactory(Echo.ClientOptions(givenKey, serverKey.PublicKey));
        await using (ConnectionContext connection = await withFile.ConnectAsync(endpoint).AsTask().Within())
        {
            await Echo.RoundTripAsync(connection);
        }

        await using (ConnectionContext connection = await withGiven.ConnectAsync(endpoint).AsTask().Within())
        {
            await Echo.RoundTripAsync(connection);
        }

        Assert.NotEqual(0, fileKey.CopiesInMemory());

        withFile.Dispose();
        withGiven.Dispose();

        Assert.Equal(0, fileKey.CopiesInMemory());
        ServerKeyFileIdentityTests.AssertStillSigns(givenKey);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => withFile.ConnectAsync(endpoint).AsTask());
    }
}
