using System.Buffers;
using System.Diagnostics.Metrics;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A <c>UseOssuary</c> server whose <see cref="OssuaryServerOptions.IdentitySelector"/> throws, or
/// returns no key where no default is set, has failed, not its client: it says so with Disconnect
/// (error), which the client reports as <see cref="OssuaryErrorReason.ConnectionFailed"/>, and lets
/// the client close first rather than reset the connection under it. The connection ended without
/// any Ossuary packet: the socket closed with the client's ClientHandshake unread, so the client saw
/// a reset (or a truncated stream), as if the network had failed, not the server.
/// </summary>
public class FailingIdentitySelectorTests
{
    private const int IdentitySelectorFailed = 20;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public Task TheClientOfAFailingIdentitySelectorIsToldWithADisconnect(bool throws) => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.AuthorizedClientKeys.Add(keys.Client.PublicKey);
            o.IdentitySelector = _ => throws ? throw new InvalidOperationException("the key vault is down") : null;
        }, OssuaryTestServer.LogTo(logs));

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()));

        // The server's Disconnect (error) carries no exception; a reset would be ConnectionFailed with
        // the socket's, and a closed socket Truncated.
        Assert.Equal((OssuaryErrorReason.ConnectionFailed, null), (failed.Reason, failed.InnerException?.GetType()));
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == IdentitySelectorFailed));
        Assert.Equal(LogLevel.Error, logs.Collector.GetSnapshot().First(r => r.Id.Id == IdentitySelectorFailed).Level);
    });

    /// <summary>
    /// A selector that returns an identity already disposed (one freed at a key rotation, say) is the selector's
    /// failure, and said so: logged as a failing selector (event 20, at Error) with the
    /// <see cref="ObjectDisposedException"/> inside, the client told with Disconnect (error). It surfaced only
    /// later, as the handshake signed, as an anonymous failure of "the handshake" that named no selector.
    /// </summary>
    [Fact]
    public Task AnIdentitySelectorThatReturnsADisposedIdentityFailsAsTheSelector() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        var rotatedOut = OssuaryIdentity.Generate();
        rotatedOut.Dispose();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.AuthorizedClientKeys.Add(keys.Client.PublicKey);
            o.IdentitySelector = _ => rotatedOut;
        }, OssuaryTestServer.LogTo(logs));
        OssuaryClientOptions options = keys.ClientOptions();
        options.TrustedServerKeys.Add(rotatedOut.PublicKey);

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(server.EndPoint, options));

        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == IdentitySelectorFailed));
        FakeLogRecord logged = logs.Collector.GetSnapshot().First(r => r.Id.Id == IdentitySelectorFailed);
        Assert.Equal((LogLevel.Error, typeof(ObjectDisposedException)), (logged.Level, logged.Exception?.GetType()));
    });

    [Fact]
    public Task AClientWhoseHandshakeWaitsUnreadGetsTheDisconnectAndAnOrderlyEndNotAReset() => Run(async () =>
    {
        // The selector fails only once the client's ClientHandshake has been sent: it waits unread at
        // the server (in the socket or Kestrel's pipe) as the server ends the connection, and a socket
        // closed with bytes unread sends a reset.
        using var keys = new MutualKeys();
        using var handshakeSent = new ManualResetEventSlim();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.AuthorizedClientKeys.Add(keys.Client.PublicKey);
            o.IdentitySelector = _ =>
            {
                handshakeSent.Wait(TestTimeout.Default);
                throw new InvalidOperationException("the key vault is down");
            };
        });
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = keys.Client };
        options.AuthorizedKeys.Add(keys.Server.PublicKey);
        using var client = new SessionSocketPeer(await RawPeer.ConnectAsync(server.EndPoint), new OssuarySession(options));
        var clientHandshake = new ArrayBufferWriter<byte>();
        client.Session.WriteHandshake(clientHandshake);
        await client.Socket.SendAsync(clientHandshake.WrittenMemory, SocketFlags.None).AsTask().Within();
        handshakeSent.Set();

        (_, OssuaryErrorReason ended) = await client.ReadUntilEndedAsync();

        // Done, as a client told the server failed is: it closes its end, and the server's end follows.
        try
        {
            client.Socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
            // Already reset: the socket has no end left to close (what is asserted below says so).
        }

        PeerClose close = await RawPeer.WaitForCloseAsync(client.Socket, TestTimeout.Default);
        int pendingError = (int)client.Socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
        Assert.Equal((OssuaryErrorReason.ConnectionFailed, new PeerClose(Closed: true, Reset: false, BytesReceived: 0), 0), (ended, close, pendingError));
    });

    [Fact]
    public Task AFailingIdentitySelectorIsCountedAsAFailedHandshake() => Run(async () =>
    {
        // The connection ended without a handshake, and the meter counted nothing: a dashboard of
        // handshake failures showed none while every client was turned away.
        using var keys = new MutualKeys();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.AuthorizedClientKeys.Add(keys.Client.PublicKey);
            o.IdentitySelector = _ => throw new InvalidOperationException("the key vault is down");
        });
        IMeterFactory meters = server.Services.GetRequiredService<IMeterFactory>();
        using var durations = new MetricCollector<double>(meters, "Ossuary.Pipelines", "ossuary.handshake.duration");
        using var active = new MetricCollector<long>(meters, "Ossuary.Pipelines", "ossuary.active_handshakes");

        await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()));

        await durations.WaitForMeasurementsAsync(1).Within();
        CollectedMeasurement<double> duration = Assert.Single(durations.GetMeasurementSnapshot());
        Assert.Equal(("failure", nameof(OssuaryErrorReason.ConnectionFailed), "server"),
            (duration.Tags["ossuary.outcome"], duration.Tags["error.type"], duration.Tags["ossuary.role"]));
        Assert.Equal(0, active.GetMeasurementSnapshot().Sum(m => m.Value)); // counted in and out again
    });

    private static Task Run(Func<Task> test) => test().Within();
}
