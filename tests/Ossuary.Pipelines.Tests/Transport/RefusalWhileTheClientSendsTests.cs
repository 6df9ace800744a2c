using System.Net.Sockets;
using Microsoft.AspNetCore.Connections.Features;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A <c>UseOssuary</c> server that refuses a client during the handshake while the client, which
/// counts itself established once its ClientAuthentication has gone, is already sending data.
/// </summary>
public class RefusalWhileTheClientSendsTests
{
    // More than Kestrel's input pipe (1 MiB), the server's receive buffer and the client's send buffer
    // hold between them: the client is still sending when the server refuses, whatever the timing.
    private const int Sent = 16 << 20;

    [Fact]
    public async Task ARefusedClientStillSendingGetsTheRefusalAndAnOrderlyEndNotAReset()
    {
        // The server sent its Disconnect (error) and returned: its socket was closed with the client's
        // bytes unread (or received them once closed), which sends a reset. On many stacks (Windows, or
        // a reset that arrives before the client reads) the reset drops the Disconnect, and the client
        // saw "connection reset" instead of the refusal. On Linux the Disconnect stays readable, so the
        // reset itself is what is checked: the client's write fails with it, or it is left on the socket.
        // The allow-list says no once the client's bytes wait unread in the server's socket (its
        // transport has read all it buffers), so that they are there when the server closes.
        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = keys.Server;
            o.AuthorizeClient = async (_, connection, cancellationToken) =>
            {
                Socket socket = connection!.Features.Get<IConnectionSocketFeature>()!.Socket;
                while (socket.Available == 0)
                {
                    await Task.Delay(10, cancellationToken);
                }

                return false;
            };
        });
        using SessionSocketPeer client = await SessionSocketPeer.ConnectClientAsync(server.EndPoint, keys);

        byte[] frame = new byte[OssuarySession.MaxPlaintextLength];
        byte[] packets = [.. Enumerable.Range(0, Sent / frame.Length).SelectMany(_ => client.DataPacket(frame))];
        bool sent = await RawPeer.TrySendAsync(client.Socket, packets);
        (_, OssuaryErrorReason ended) = await client.ReadUntilEndedAsync();

        // Done, as a client told of its refusal is: it closes its end, and the server's end follows.
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

        Assert.Equal((true, OssuaryErrorReason.ConnectionFailed, new PeerClose(Closed: true, Reset: false, BytesReceived: 0), 0), (sent, ended, close, pendingError));
    }

    [Fact]
    public async Task ARefusedClientThatSendsJustAfterTheRefusalGetsAnOrderlyEndNotAReset()
    {
        // The server looked for the client's bytes once, right after its Disconnect (error), and let the
        // socket close when none were there yet: bytes the client sent a moment later (it counts itself
        // established, and its application writes when it likes) met a closed socket and drew a reset,
        // which on many stacks drops the Disconnect before the client reads it. Here the client sends
        // just after the refusal has reached it, so its bytes come after the server's one look.
        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = keys.Server;
            o.AuthorizeClient = (_, _, _) => ValueTask.FromResult(false);
        });
        using SessionSocketPeer client = await SessionSocketPeer.ConnectClientAsync(server.EndPoint, keys);
        byte[] packet = client.DataPacket(new byte[1024]);

        (_, OssuaryErrorReason ended) = await client.ReadUntilEndedAsync();
        bool sent = await RawPeer.TrySendAsync(client.Socket, packet);
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

        Assert.Equal((true, OssuaryErrorReason.ConnectionFailed, new PeerClose(Closed: true, Reset: false, BytesReceived: 0), 0), (sent, ended, close, pendingError));
    }
}
