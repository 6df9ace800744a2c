using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>Issue 14, items 2 and 6: an IConnectionFactory client from DI, and the client connection's lifecycle signals.</summary>
public class ConnectionFactoryTests
{
    [Fact]
    public async Task AConnectionFactoryFromDependencyInjectionConnectsAndEchoes()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, clientKey)));
        var services = new ServiceCollection();
        services.AddLogging().AddMetrics();
        services.AddOssuaryClient(o =>
        {
            o.Identity = clientKey;
            o.TrustedServerKeys.Add(serverKey.PublicKey);
        });
        await using ServiceProvider provider = services.BuildServiceProvider();

        IConnectionFactory factory = provider.GetRequiredService<IConnectionFactory>();
        await using ConnectionContext connection = await factory.ConnectAsync(new DnsEndPoint("localhost", host.Port())).AsTask().Within();
        await Echo.RoundTripAsync(connection, "through the abstraction");

        Assert.IsType<OssuaryConnectionFactory>(factory);
        Assert.Same(factory, provider.GetRequiredService<OssuaryConnectionFactory>());
        IOssuaryConnectionFeature feature = connection.Features.Get<IOssuaryConnectionFeature>()!;
        Assert.Equal(serverKey.PublicKey, feature.RemotePublicKey);
        Assert.Equal(clientKey.PublicKey, feature.LocalPublicKey);
    }

    [Fact]
    public async Task ConnectionClosedFiresWhenTheServerDisconnects()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.UseOssuary(o =>
            {
                o.Identity = serverKey;
                o.AuthorizedClientKeys.Add(clientKey.PublicKey);
            });
            listen.Run(async connection => await connection.Transport.Output.WriteAsync("bye"u8.ToArray())); // then the server disconnects
        }));

        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(
            new IPEndPoint(IPAddress.Loopback, host.Port()), Echo.ClientOptions(clientKey, serverKey.PublicKey)).Within();
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using CancellationTokenRegistration registration = connection.ConnectionClosed.Register(closed.SetResult);

        await closed.Task.Within();
        Assert.Equal("bye"u8.ToArray(), await PipeReads.ReadToEndAsync(connection.Transport.Input)); // a clean Disconnect: no data lost
    }

    [Fact]
    public async Task ConnectionClosedFiresWhenTheServerRefusesTheClient()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var listedKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, listedKey)));

        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(
            new IPEndPoint(IPAddress.Loopback, host.Port()), Echo.ClientOptions(strangerKey, serverKey.PublicKey)).Within();

        await Task.Delay(Timeout.Infinite, connection.ConnectionClosed).ContinueWith(_ => { }).Within();
        Assert.True(connection.ConnectionClosed.IsCancellationRequested);
    }

    [Fact]
    public async Task TrustServerAtEndPointIsToldTheEndPointAsNamedAndTheAddressReached()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, clientKey)));
        var asked = new ConcurrentQueue<OssuaryServerTrustContext>();
        var options = new OssuaryClientOptions
        {
            Identity = clientKey,
            TrustServerAtEndPoint = (context, _) =>
            {
                asked.Enqueue(context);
                return ValueTask.FromResult(context.EndPoint is DnsEndPoint { Host: "localhost" });
            },
        };
        var named = new DnsEndPoint("localhost", host.Port());

        await using OssuaryClientConnection connection = await Echo.ConnectAndEchoAsync(named, options);

        OssuaryServerTrustContext context = Assert.Single(asked);
        Assert.Equal(serverKey.PublicKey, context.ServerKey);
        Assert.Equal(named, context.EndPoint);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, host.Port()), context.RemoteEndPoint);
    }

    [Fact]
    public async Task TrustServerAtEndPointReachesStreamsAndPipesThroughTheirEndPointOverloads()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, clientKey)));
        var named = new DnsEndPoint("telemetry.example", host.Port());
        var asked = new ConcurrentQueue<EndPoint?>();
        var options = new OssuaryClientOptions
        {
            Identity = clientKey,
            TrustServerAtEndPoint = (context, _) =>
            {
                asked.Enqueue(context.EndPoint);
                return ValueTask.FromResult(true);
            },
        };

        using (var tcp = new System.Net.Sockets.TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, host.Port()).Within();
            await using var stream = new OssuaryStream(tcp.GetStream());
            await stream.AuthenticateAsClientAsync(options, named, CancellationToken.None).Within();
        }

        Assert.Equal([named], asked);
    }

    [Fact]
    public void SettingBothTrustCallbacksIsRefusedAtValidation()
    {
        var options = new OssuaryClientOptions
        {
            TrustServer = (_, _) => ValueTask.FromResult(true),
            TrustServerAtEndPoint = (_, _) => ValueTask.FromResult(true),
        };

        InvalidOperationException invalid = Assert.Throws<InvalidOperationException>(() => new OssuaryConnectionFactory(options));

        Assert.Contains("TrustServerAtEndPoint", invalid.Message);
    }
}
