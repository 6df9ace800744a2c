using System.Buffers;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A <c>UseOssuary</c> server that refused a client (its allow-list said no) or failed before its
/// handshake (its <see cref="OssuaryServerOptions.IdentitySelector"/> threw) waits at most 5 s for the
/// client to close its end. A client that is still sending then has the socket closed under it, and the
/// reset that follows may drop the server's Disconnect (error): that is logged as the peer's doing (Debug,
/// event 5), as the established connection's linger says it. Both waits ran out and said nothing.
/// The deadline is the library's 5 s, shortened here (<see cref="ShortCloseWait"/>); both servers wait it out side by side.
/// </summary>
public class RefusedClientStillSendingAtTheDeadlineTests
{
    private const int ConnectionFailed = 5;

    [Fact]
    public Task ServersWhoseRefusedClientsNeverStopSendingSayWhenTheyCloseUnderThem() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var refusingLogs = new FakeLoggerProvider();
        var failingLogs = new FakeLoggerProvider();
        await using OssuaryTestServer refusing = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = keys.Server;
            o.Shortened();

            // Refuses once the client's bytes wait unread in the socket: the refusal's wait has begun,
            // whichever way it decides to wait, with a client that is still sending.
            o.AuthorizeClient = async (_, connection, cancellationToken) =>
            {
                Socket socket = connection!.Features.Get<IConnectionSocketFeature>()!.Socket;
                while (socket.Available == 0)
                {
                    await Task.Delay(10, cancellationToken);
                }

                return false;
            };
        }, OssuaryTestServer.LogTo(refusingLogs));
        await using OssuaryTestServer failing = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.AuthorizedClientKeys.Add(keys.Client.PublicKey);
            o.Shortened();
            o.IdentitySelector = _ => throw new InvalidOperationException("the key vault is down");
        }, OssuaryTestServer.LogTo(failingLogs));

        using SessionSocketPeer refused = await SessionSocketPeer.ConnectClientAsync(refusing.EndPoint, keys);
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = keys.Client };
        options.AuthorizedKeys.Add(keys.Server.PublicKey);
        using var failed = new SessionSocketPeer(await RawPeer.ConnectAsync(failing.EndPoint), new OssuarySession(options));
        var clientHandshake = new ArrayBufferWriter<byte>();
        failed.Session.WriteHandshake(clientHandshake);
        await failed.Socket.SendAsync(clientHandshake.WrittenMemory, SocketFlags.None).AsTask().Within();

        // Each sends until its server's socket is closed under it (the send then fails): the server
        // logged before it let the socket close, so what it said is there once these return.
        await Task.WhenAll(
            SendUntilClosedAsync(refused.Socket, refused.DataPacket(new byte[OssuarySession.MaxPlaintextLength])),
            SendUntilClosedAsync(failed.Socket, new byte[OssuarySession.MaxPlaintextLength])).Within();

        AssertStillSendingLogged(refusingLogs);
        AssertStillSendingLogged(failingLogs);
    });

    private static async Task SendUntilClosedAsync(Socket socket, byte[] bytes)
    {
        try
        {
            while (true)
            {
                await socket.SendAsync(bytes, SocketFlags.None).Within();
            }
        }
        catch (SocketException)
        {
            // The server closed its socket with these bytes unread: reset.
        }
    }

    private static void AssertStillSendingLogged(FakeLoggerProvider logs)
    {
        FakeLogRecord logged = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == ConnectionFailed);
        Assert.Equal(LogLevel.Debug, logged.Level);
        OssuaryException said = Assert.IsType<OssuaryException>(logged.Exception);
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, said.Reason);
        Assert.Contains("had not closed its end", said.Message, StringComparison.Ordinal);
    }

    private static Task Run(Func<Task> test) => test().Within();
}
