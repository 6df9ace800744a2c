using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// After our Disconnect, a peer still sending is given 5 s to close its end before the socket is
/// closed under it. A peer that never stops ends that wait at its deadline, and the socket then
/// closes with the peer's bytes unread: a reset, which may drop our last frames and the Disconnect.
/// That is logged as the peer's doing (Debug, event 5), as the output's own 5 s timeout is; it was
/// silent, on the server (<c>UseOssuary</c>'s linger) and on the client (its socket stream's).
/// The deadline is the library's 5 s, shortened here (<see cref="ShortCloseWait"/>): the log is asserted, not the time.
/// </summary>
public class PeerStillSendingAfterTheLingerTests
{
    private const int ConnectionFailed = 5;

    [Fact]
    public Task AServerWhoseClientNeverStopsSendingAfterItsDisconnectSaysSoWhenItCloses() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await KestrelHost.StartOssuaryAsync(keys.Server, keys.Client.PublicKey, async connection =>
        {
            // Returns (its Disconnect goes out) once the client's bytes wait unread in the socket: the
            // handler reads nothing, so the input and Kestrel's pipe are full before that.
            Socket socket = connection.Features.Get<IConnectionSocketFeature>()!.Socket;
            while (socket.Available == 0)
            {
                await Task.Delay(10);
            }
        }, builder => builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug), ShortCloseWait.Value);
        using SessionSocketPeer client = await SessionSocketPeer.ConnectClientAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), keys);

        // Sends until the server's socket is closed under it (the send then fails): the server logged
        // before it closed, so what it said is there once this returns.
        await SendUntilClosedAsync(client);

        AssertStillSendingLogged(logs);
    });

    [Fact]
    public Task AClientWhoseServerNeverStopsSendingAfterItsDisconnectSaysSoWhenItCloses() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        OssuaryClientOptions options = keys.ClientOptions().Shortened();
        options.LoggerFactory = loggers;
        (SessionSocketPeer server, OssuaryClientConnection client) = await SessionSocketPeer.ServeClientAsync(keys, options);
        using SessionSocketPeer serverPeer = server;
        Task sending = Task.Run(() => SendUntilClosedAsync(server));

        // Bytes of the server's wait unread as the client says goodbye (it reads nothing, and the server's
        // kernel holds what no longer fits): its disposal lingers for the server's close.
        await HostilePeerTests.WaitForAsync(() => SocketQueues.PeerIsBehind(server.Socket));
        await client.DisposeAsync().AsTask().Within();
        await sending.Within();

        AssertStillSendingLogged(logs);
    });

    private static async Task SendUntilClosedAsync(SessionSocketPeer peer)
    {
        byte[] packet = peer.DataPacket(new byte[OssuarySession.MaxPlaintextLength]);
        try
        {
            while (true)
            {
                await peer.Socket.SendAsync(packet, SocketFlags.None).Within();
                packet = peer.DataPacket(new byte[OssuarySession.MaxPlaintextLength]);
            }
        }
        catch (SocketException)
        {
            // The other side closed its socket with these bytes unread: reset.
        }
    }

    private static void AssertStillSendingLogged(FakeLoggerProvider logs)
    {
        FakeLogRecord logged = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == ConnectionFailed);
        Assert.Equal(LogLevel.Debug, logged.Level);
        // At the deadline the socket stops receiving; Linux answers the bytes the peer still sends with a reset
        // of its own, which a read waiting at that moment (the client's inbound loop) reports as a reset after
        // our Disconnect. Either way the one event 5 says our last bytes may not have reached the peer.
        string message = Assert.IsType<OssuaryException>(logged.Exception).Message;
        Assert.True(message.Contains("still sending", StringComparison.Ordinal) || message.Contains("reset the connection after this side's Disconnect", StringComparison.Ordinal), message);
    }

    private static Task Run(Func<Task> test) => test().Within();
}
