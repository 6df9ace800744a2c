using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>Who may talk to whom: UseOssuary in Kestrel against OssuaryClient.ConnectAsync on loopback TCP.</summary>
public class KestrelAuthenticationTests
{
    [Fact]
    public Task AnonymousClientIsAdmittedByAnUnauthenticatedServerAndSeenWithoutAKey() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Mode = OssuaryServerMode.Unauthenticated;
            o.Identity = serverKey;
        });
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
        await connection.Transport.Output.WriteAsync("anyone home?"u8.ToArray());

        Assert.Equal("anyone home?"u8.ToArray(), await PipeReads.ReadExactlyAsync(connection.Transport.Input, 12));
        Assert.Equal(serverKey.PublicKey, connection.Ossuary.RemotePublicKey);
        Assert.Equal(OssuaryPublicKey.Anonymous, connection.Ossuary.LocalPublicKey);
        IOssuaryConnectionFeature? seen = Assert.Single(server.Log.Features);
        Assert.NotNull(seen);
        Assert.Null(seen.RemotePublicKey);
        Assert.Equal(serverKey.PublicKey, seen.LocalPublicKey);
    });

    [Fact]
    public Task ClientWithoutTrustedKeysTrustsTheServerOnFirstUseThroughItsCallback() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(serverKey, clientKey);
        var asked = new ConcurrentQueue<OssuaryPublicKey>();
        var options = new OssuaryClientOptions
        {
            Identity = clientKey,
            TrustServer = (key, _) =>
            {
                asked.Enqueue(key);
                return ValueTask.FromResult(true);
            },
        };

        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
        await connection.Transport.Output.WriteAsync("first contact"u8.ToArray());

        Assert.Equal("first contact"u8.ToArray(), await PipeReads.ReadExactlyAsync(connection.Transport.Input, 13));
        Assert.Equal(serverKey.PublicKey, Assert.Single(asked));
        Assert.Equal(serverKey.PublicKey, connection.Ossuary.RemotePublicKey);
        Assert.Empty(options.TrustedServerKeys); // trust is per connection; recording it is the callback's job
    });

    [Fact]
    public Task UnknownClientIsRefusedAndLearnsItOnItsFirstReadAsConnectionFailedWithTheLikelyCause() => Run(async () =>
    {
        // The client counts itself established as soon as it has sent ClientAuthentication (the
        // protocol's 1.5 round trips), so ConnectAsync succeeds; the server's Disconnect (error)
        // arrives afterwards and fails the first read.
        using var serverKey = OssuaryIdentity.Generate();
        using var allowedKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        var logs = new FakeLoggerProvider();
        await using var server = await OssuaryTestServer.StartEchoAsync(
            o =>
            {
                o.Identity = serverKey;
                o.AuthorizedClientKeys.Add(allowedKey.PublicKey);
            },
            OssuaryTestServer.LogTo(logs));
        using var durations = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Ossuary.Pipelines", "ossuary.handshake.duration");
        var options = new OssuaryClientOptions { Identity = strangerKey };
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
        OssuaryException refused = await Assert.ThrowsAsync<OssuaryException>(() => connection.Transport.Input.ReadAsync().AsTask());

        // The wire says only "error"; the message names the likely cause, which the server knows for sure.
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, refused.Reason);
        Assert.Contains("does not admit", refused.Message);
        Assert.Contains("authorizes this client's key", refused.Message);
        await durations.WaitForMeasurementsAsync(1).Within();
        CollectedMeasurement<double> measurement = Assert.Single(durations.GetMeasurementSnapshot());
        Assert.Equal("failure", measurement.Tags["ossuary.outcome"]);
        Assert.Equal(nameof(OssuaryErrorReason.InvalidKey), measurement.Tags["error.type"]);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 3)); // logged just after it is counted
        FakeLogRecord failed = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == 3);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Debug, failed.Level);
        Assert.Contains(nameof(OssuaryErrorReason.InvalidKey), failed.Message);
        Assert.Empty(server.Log.Features); // the echo handler never ran
    });

    [Fact]
    public Task AnOssuaryStreamClientThatIsRefusedLearnsTheLikelyCauseOnItsFirstRead() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var allowedKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(serverKey, allowedKey);
        var options = new OssuaryClientOptions { Identity = strangerKey };
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        using var socket = new System.Net.Sockets.TcpClient();
        await socket.ConnectAsync(server.EndPoint).Within();
        await using var stream = new OssuaryStream(socket.GetStream());

        await stream.AuthenticateAsClientAsync(options).Within();
        OssuaryException refused = await Assert.ThrowsAsync<OssuaryException>(() => stream.ReadAsync(new byte[16]).AsTask().Within());

        Assert.Equal(OssuaryErrorReason.ConnectionFailed, refused.Reason);
        Assert.Contains("does not admit", refused.Message);
    });

    [Fact]
    public Task AServerApplicationThatFailsBeforeWritingIsNotBlamedOnTheClientKeyByItsReason() => Run(async () =>
    {
        // The same wire as a refusal (Disconnect with error before any data): the reason stays ConnectionFailed.
        var link = LinkedPipes.Transparent(out Task relays);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            await pair.Server.Output.WriteAsync("one"u8.ToArray());
            Assert.Equal("one"u8.ToArray(), await PipeReads.ReadExactlyAsync(pair.Client.Input, 3));
            await pair.Server.Output.CompleteAsync(new InvalidOperationException("the server application crashed"));

            OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(pair.Client.Input));
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
            Assert.DoesNotContain("does not admit", failed.Message); // data had arrived: no refusal hint
        }

        await relays.Within();
    });

    [Fact]
    public Task AnonymousClientIsRefusedByAnAuthenticatedServer() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var allowedKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(serverKey, allowedKey);
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
        OssuaryException refused = await Assert.ThrowsAsync<OssuaryException>(() => connection.Transport.Input.ReadAsync().AsTask());

        Assert.Equal(OssuaryErrorReason.ConnectionFailed, refused.Reason);
        Assert.Empty(server.Log.Features);

        // It has no key: told to check that the server authorizes "this client's key", its operator looked for one.
        Assert.Contains("does not admit anonymous clients", refused.Message);
        Assert.DoesNotContain("client's key", refused.Message);
    });

    [Fact]
    public Task AnAnonymousOssuaryStreamClientThatIsRefusedIsToldItHasNoIdentityNotToCheckItsKey() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var allowedKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(serverKey, allowedKey);
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        using var socket = new System.Net.Sockets.TcpClient();
        await socket.ConnectAsync(server.EndPoint).Within();
        await using var stream = new OssuaryStream(socket.GetStream());

        await stream.AuthenticateAsClientAsync(options).Within();
        OssuaryException refused = await Assert.ThrowsAsync<OssuaryException>(() => stream.ReadAsync(new byte[16]).AsTask().Within());

        Assert.Equal(OssuaryErrorReason.ConnectionFailed, refused.Reason);
        Assert.Contains("has no identity", refused.Message);
        Assert.DoesNotContain("client's key", refused.Message);
    });

    [Fact]
    public Task RefusedClientsAlwaysConnectAndThenFailTheirFirstReadNeverWithASocketError() => Run(async () =>
    {
        // Regression: ConnectAsync read the socket's endpoints after the handshake, and a server
        // that had already refused and reset the connection made that throw SocketException
        // (about 1 connection in 70 on loopback).
        using var serverKey = OssuaryIdentity.Generate();
        using var allowedKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(serverKey, allowedKey);
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        for (int i = 0; i < 200; i++)
        {
            await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
            Assert.NotNull(connection.RemoteEndPoint);
            OssuaryException refused = await Assert.ThrowsAsync<OssuaryException>(() => connection.Transport.Input.ReadAsync().AsTask().Within());
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, refused.Reason);
        }

        Assert.Empty(server.Log.Features);
    });

    [Fact]
    public Task ServerKeyTheClientDoesNotTrustFailsConnectAsUntrustedServer() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        using var otherServerKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(serverKey, clientKey);
        var options = new OssuaryClientOptions { Identity = clientKey };
        options.TrustedServerKeys.Add(otherServerKey.PublicKey);

        OssuaryException untrusted = await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(server.EndPoint, options));

        Assert.Equal(OssuaryErrorReason.UntrustedServer, untrusted.Reason);
        Assert.Contains(serverKey.PublicKey.ToString(), untrusted.Message); // public keys may be named
        Assert.Empty(server.Log.Features);
    });

    [Fact]
    public Task TrustCallbackThatSaysNoFailsConnectAsUntrustedServer() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(serverKey, clientKey);
        var options = new OssuaryClientOptions { Identity = clientKey, TrustServer = (_, _) => ValueTask.FromResult(false) };

        OssuaryException untrusted = await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(server.EndPoint, options));

        Assert.Equal(OssuaryErrorReason.UntrustedServer, untrusted.Reason);
    });

    [Fact]
    public Task AuthorizeClientCallbackAdmitsAKeyNotOnTheListAndSeesTheConnection() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var listedKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        var asked = new ConcurrentQueue<(OssuaryPublicKey Key, ConnectionContext? Connection)>();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(listedKey.PublicKey);
            o.AuthorizeClient = async (key, connection, cancellationToken) =>
            {
                await Task.Yield(); // a genuinely asynchronous decision
                asked.Enqueue((key, connection));
                return key == clientKey.PublicKey;
            };
        });
        var options = new OssuaryClientOptions { Identity = clientKey };
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
        await connection.Transport.Output.WriteAsync("let me in"u8.ToArray());

        Assert.Equal("let me in"u8.ToArray(), await PipeReads.ReadExactlyAsync(connection.Transport.Input, 9));
        (OssuaryPublicKey key, ConnectionContext? context) = Assert.Single(asked);
        Assert.Equal(clientKey.PublicKey, key);
        Assert.NotNull(context);
        Assert.NotNull(context.RemoteEndPoint);
        Assert.Equal(clientKey.PublicKey, Assert.Single(server.Log.Features)!.RemotePublicKey);
    });

    [Fact]
    public Task ListedClientIsAdmittedWithoutAskingTheCallback() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        int asked = 0;
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(clientKey.PublicKey);
            o.AuthorizeClient = (_, _, _) =>
            {
                Interlocked.Increment(ref asked);
                return ValueTask.FromResult(false);
            };
        });
        var options = new OssuaryClientOptions { Identity = clientKey };
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
        await connection.Transport.Output.WriteAsync("listed"u8.ToArray());

        Assert.Equal("listed"u8.ToArray(), await PipeReads.ReadExactlyAsync(connection.Transport.Input, 6));
        Assert.Equal(0, Volatile.Read(ref asked));
    });

    private static Task Run(Func<Task> test) => test().Within();
}
