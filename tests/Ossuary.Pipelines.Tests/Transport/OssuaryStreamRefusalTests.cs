using System.Buffers;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// An <see cref="OssuaryStream"/> server over a socket it owns that refuses a client (its allow-list
/// says no), or fails before its handshake (its <see cref="OssuaryServerOptions.IdentitySelector"/>
/// throws), tells the client with Disconnect (error), and its caller then disposes the stream. The
/// socket closed with the client's bytes unread (its ClientHandshake; whatever a refused client, which
/// counts itself established, sent next), or received them once closed, and sent a reset, which on many
/// stacks drops the Disconnect before the client reads it. <c>UseOssuary</c> waits for the client's
/// close first; the stream did not.
/// </summary>
public class OssuaryStreamRefusalTests
{
    [Fact]
    public Task ARefusedClientThatSendsAfterTheRefusalGetsAnOrderlyEndNotAReset() => Run(async () =>
    {
        using var keys = new MutualKeys();
        using var stranger = OssuaryIdentity.Generate();
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        var serverOptions = new OssuaryServerOptions { Identity = keys.Server };
        serverOptions.AuthorizedClientKeys.Add(stranger.PublicKey);
        Task serving = ServeAsync(serverSide, serverOptions);
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = keys.Client };
        options.AuthorizedKeys.Add(keys.Server.PublicKey);
        using var client = new SessionSocketPeer(clientSide.Socket, new OssuarySession(options));
        await client.HandshakeAsync();
        byte[] packet = client.DataPacket(new byte[1024]);

        (_, OssuaryErrorReason ended) = await client.ReadUntilEndedAsync();
        (bool sent, PeerClose close, int pendingError) = await SendAndCloseAsync(client.Socket, packet);
        await serving;

        Assert.Equal((true, OssuaryErrorReason.ConnectionFailed, new PeerClose(Closed: true, Reset: false, BytesReceived: 0), 0), (sent, ended, close, pendingError));
    });

    [Fact]
    public Task AClientOfAFailingIdentitySelectorGetsTheDisconnectAndAnOrderlyEndNotAReset() => Run(async () =>
    {
        using var keys = new MutualKeys();
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        var serverOptions = new OssuaryServerOptions { IdentitySelector = _ => throw new InvalidOperationException("the key vault is down") };
        serverOptions.AuthorizedClientKeys.Add(keys.Client.PublicKey);
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = keys.Client };
        options.AuthorizedKeys.Add(keys.Server.PublicKey);
        using var client = new SessionSocketPeer(clientSide.Socket, new OssuarySession(options));

        // The ClientHandshake is in the server's socket before the server looks: it waits there unread.
        var clientHandshake = new ArrayBufferWriter<byte>();
        client.Session.WriteHandshake(clientHandshake);
        await client.Socket.SendAsync(clientHandshake.WrittenMemory, SocketFlags.None).AsTask().Within();
        Task serving = ServeAsync(serverSide, serverOptions);

        (_, OssuaryErrorReason ended) = await client.ReadUntilEndedAsync();
        (_, PeerClose close, int pendingError) = await SendAndCloseAsync(client.Socket, ReadOnlyMemory<byte>.Empty);
        await serving;

        Assert.Equal((OssuaryErrorReason.ConnectionFailed, new PeerClose(Closed: true, Reset: false, BytesReceived: 0), 0), (ended, close, pendingError));
    });

    /// <summary>A server as its caller writes one: the stream is disposed as the handshake fails.</summary>
    private static async Task ServeAsync(NetworkStream inner, OssuaryServerOptions options)
    {
        await using var server = new OssuaryStream(inner);
        await Assert.ThrowsAsync<OssuaryException>(() => server.AuthenticateAsServerAsync(options)).Within();
    }

    /// <summary>Sends <paramref name="bytes"/> (if any), closes this end as a client told of its refusal does, and waits for the server's end.</summary>
    private static async Task<(bool Sent, PeerClose Close, int PendingError)> SendAndCloseAsync(Socket socket, ReadOnlyMemory<byte> bytes)
    {
        bool sent = bytes.IsEmpty || await RawPeer.TrySendAsync(socket, bytes);
        try
        {
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
            // Already reset: the socket has no end left to close (what is asserted says so).
        }

        PeerClose close = await RawPeer.WaitForCloseAsync(socket, TestTimeout.Default);
        return (sent, close, (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!);
    }

    private static Task Run(Func<Task> test) => test().Within();
}
