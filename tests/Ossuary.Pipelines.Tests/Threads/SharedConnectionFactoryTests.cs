using System.Net;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Threads;

/// <summary>
/// One <see cref="OssuaryConnectionFactory"/> is a DI singleton that every part of an application
/// connects through: its XML doc says ConnectAsync may run on many threads at once, and Dispose while
/// they do (handshakes under way finish, later ones throw ObjectDisposedException). One server
/// <see cref="OssuaryIdentity"/> signs for all the connections at once.
/// </summary>
public sealed class SharedConnectionFactoryTests : IDisposable
{
    private const int Threads = 4;
    private const int ConnectsPerThread = 12;

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-shared-factory-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task ThreadsConnectThroughOneFactoryWhileAnotherDisposesIt()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientFile = new KeyFileSeed(_directory, "client.key");
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.UseOssuary(o =>
            {
                o.Identity = serverKey;
                o.AuthorizedClientKeys.Add(clientFile.PublicKey);
                o.HandshakeTimeout = TimeSpan.FromSeconds(60);
            });
            listen.UseConnectionHandler<EchoConnectionHandler>();
        }));
        var server = new IPEndPoint(IPAddress.Loopback, host.Port());

        // The key file's identity is the factory's, freed by Dispose once the handshakes holding it end.
        var options = new OssuaryClientOptions { IdentityKeyFile = clientFile.Path, HandshakeTimeout = TimeSpan.FromSeconds(60) };
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        var factory = new OssuaryConnectionFactory(options);
        int connected = 0;
        int attempts = 0;
        using var halfway = new ManualResetEventSlim();
        Task[] clients = [.. Enumerable.Range(0, Threads).Select(_ => Task.Run(async () =>
        {
            for (int i = 0; i < ConnectsPerThread; i++)
            {
                try
                {
                    await using ConnectionContext connection = await factory.ConnectAsync(server).AsTask().Within(TimeSpan.FromSeconds(90));
                    await Echo.RoundTripAsync(connection, $"connection {i}");
                    Assert.Equal(clientFile.PublicKey, connection.Features.Get<IOssuaryConnectionFeature>()!.LocalPublicKey);
                    Interlocked.Increment(ref connected);
                }
                catch (ObjectDisposedException)
                {
                    // Disposed before this connect took the factory's plan: refused, as documented.
                }
                finally
                {
                    if (Interlocked.Increment(ref attempts) == Threads * ConnectsPerThread / 2)
                    {
                        halfway.Set();
                    }
                }
            }
        }))];

        Assert.True(halfway.Wait(TimeSpan.FromMinutes(2)));
        factory.Dispose();
        await Task.WhenAll(clients).Within(TimeSpan.FromMinutes(3));

        Assert.True(connected >= Threads * ConnectsPerThread / 2, $"{connected} connected");
        await Assert.ThrowsAsync<ObjectDisposedException>(() => factory.ConnectAsync(server).AsTask());
    }
}
