using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
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

    /// <summary>
    /// A ConnectionClosed callback of the application that throws is the application's failure, as
    /// Kestrel's transports treat it: logged at Error with its exception, never thrown into whoever
    /// closed the connection. It was thrown out of DisposeAsync and Abort (an AggregateException from
    /// the token source), and, when the server ended the connection, lost without a word in a faulted continuation.
    /// </summary>
    [Fact]
    public async Task AThrowingConnectionClosedCallbackIsLoggedAtErrorAndNeverThrownFromAbortOrDispose()
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
            listen.Run(async connection => await connection.Transport.Input.ReadAsync()); // the server ends it when told to
        }));
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        OssuaryClientOptions options = Echo.ClientOptions(clientKey, serverKey.PublicKey);
        options.LoggerFactory = loggers;
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());

        // The server ends the connection.
        await using (OssuaryClientConnection closedByServer = await OssuaryClient.ConnectAsync(endpoint, options).Within())
        {
            var ran = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            closedByServer.ConnectionClosed.Register(() =>
            {
                ran.SetResult();
                throw new InvalidOperationException("the application's closed handler failed (server)");
            });
            await closedByServer.Transport.Output.WriteAsync("bye"u8.ToArray());
            await ran.Task.Within();
            await AssertLoggedAsync(logs, "(server)");
        }

        // The client aborts, then disposes. (Each case throws its own type: repeats of one cause log at Debug.)
        await using (OssuaryClientConnection aborted = await OssuaryClient.ConnectAsync(endpoint, options).Within())
        {
            aborted.ConnectionClosed.Register(() => throw new NotSupportedException("the application's closed handler failed (abort)"));
            aborted.Abort(new ConnectionAbortedException("done"));
            Assert.True(aborted.ConnectionClosed.IsCancellationRequested);
            await AssertLoggedAsync(logs, "(abort)");
        }

        // The client disposes.
        OssuaryClientConnection disposed = await OssuaryClient.ConnectAsync(endpoint, options).Within();
        disposed.ConnectionClosed.Register(() => throw new FormatException("the application's closed handler failed (dispose)"));
        await disposed.DisposeAsync().AsTask().Within();
        Assert.True(disposed.ConnectionClosed.IsCancellationRequested);
        await AssertLoggedAsync(logs, "(dispose)");

        static async Task AssertLoggedAsync(FakeLoggerProvider logs, string which)
        {
            await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Exception?.ToString().Contains(which) == true));
            FakeLogRecord record = logs.Collector.GetSnapshot().Single(r => r.Exception?.ToString().Contains(which) == true);
            Assert.Equal((9, LogLevel.Error), (record.Id.Id, record.Level));
            Assert.Equal("Ossuary.Pipelines.Client", record.Category);
        }
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
        var asked = new ConcurrentQueue<(EndPoint? Named, EndPoint? Reached)>();
        var options = new OssuaryClientOptions
        {
            Identity = clientKey,
            TrustServerAtEndPoint = (context, _) =>
            {
                asked.Enqueue((context.EndPoint, context.RemoteEndPoint));
                return ValueTask.FromResult(true);
            },
        };

        using (var tcp = new System.Net.Sockets.TcpClient(System.Net.Sockets.AddressFamily.InterNetwork))
        {
            await tcp.ConnectAsync(IPAddress.Loopback, host.Port()).Within();
            await using var stream = new OssuaryStream(tcp.GetStream());
            await stream.AuthenticateAsClientAsync(options, named, CancellationToken.None).Within();
        }

        using (var tcp = new System.Net.Sockets.TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, host.Port()).Within();
            var transport = new DuplexPipe(System.IO.Pipelines.PipeReader.Create(tcp.GetStream()), System.IO.Pipelines.PipeWriter.Create(tcp.GetStream()));
            await using OssuaryDuplexPipe pipe = await OssuaryDuplexPipe.ConnectAsync(transport, options, named, CancellationToken.None).Within();
        }

        // RemoteEndPoint is the address reached, never the name: a stream's socket tells it, a bare pipe cannot (null).
        Assert.Equal([(named, new IPEndPoint(IPAddress.Loopback, host.Port())), (named, null)], asked);
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
