using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// An Ossuary peer on a raw socket, driven through the sans-IO session: the test decides which
/// packets share one TCP write (a data frame and a Disconnect or Reset after it, say), which the
/// adapters never let it choose.
/// </summary>
internal sealed class SessionSocketPeer(Socket socket, OssuarySession session) : IDisposable
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _buffered;

    public Socket Socket { get; } = socket;

    public OssuarySession Session { get; } = session;

    /// <summary>A client with <paramref name="keys"/>' client key, connected to <paramref name="server"/> and established.</summary>
    public static async Task<SessionSocketPeer> ConnectClientAsync(IPEndPoint server, MutualKeys keys)
    {
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = keys.Client };
        options.AuthorizedKeys.Add(keys.Server.PublicKey);
        var client = new SessionSocketPeer(await RawPeer.ConnectAsync(server), new OssuarySession(options));
        await client.HandshakeAsync();
        return client;
    }

    /// <summary>An authenticating server with <paramref name="keys"/>' server key, and an <see cref="OssuaryClient"/> established with it (with <paramref name="client"/>, by default the keys' own).</summary>
    public static async Task<(SessionSocketPeer Server, OssuaryClientConnection Client)> ServeClientAsync(MutualKeys keys, OssuaryClientOptions? client = null)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Task<OssuaryClientConnection> connecting = OssuaryClient.ConnectAsync((IPEndPoint)listener.LocalEndpoint, client ?? keys.ClientOptions());
        var options = new OssuarySessionOptions { Role = OssuaryRole.AuthenticatedServer, Identity = keys.Server };
        options.AuthorizedKeys.Add(keys.Client.PublicKey);
        var server = new SessionSocketPeer(await listener.AcceptSocketAsync().Within(), new OssuarySession(options));
        await server.HandshakeAsync();
        return (server, await connecting.Within());
    }

    /// <summary>Runs the handshake to the end (until this side counts itself established).</summary>
    public async Task HandshakeAsync()
    {
        await SendHandshakeAsync();
        while (!Session.IsEstablished)
        {
            int read = await Socket.ReceiveAsync(_buffer.AsMemory(_buffered), SocketFlags.None).AsTask().Within();
            Assert.True(read > 0, "the adapter closed the socket during the handshake");
            _buffered += read;
            while (true)
            {
                var plaintext = new ArrayBufferWriter<byte>();
                OssuaryReceiveResult result = Session.Receive(new ReadOnlySequence<byte>(_buffer, 0, _buffered), plaintext, out SequencePosition consumed, out _);
                int used = consumed.GetInteger();
                Buffer.BlockCopy(_buffer, used, _buffer, 0, _buffered - used);
                _buffered -= used;
                Assert.True(result.Status is OssuaryReceiveStatus.Handshake or OssuaryReceiveStatus.NeedMoreData, $"unexpected {result.Status} ({result.Reason}) during the handshake");
                await SendHandshakeAsync();
                if (result.Status == OssuaryReceiveStatus.NeedMoreData || _buffered == 0)
                {
                    break;
                }
            }
        }

        Assert.Equal(0, _buffered); // nothing of the adapter's data yet: the test sends first
    }

    /// <summary>One sealed data packet carrying <paramref name="plaintext"/>, not sent.</summary>
    public byte[] DataPacket(ReadOnlySpan<byte> plaintext)
    {
        var output = new ArrayBufferWriter<byte>();
        Session.WriteData(plaintext, output);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Sends <paramref name="packets"/> in one socket write.</summary>
    public async Task SendTogetherAsync(params byte[][] packets) =>
        await Socket.SendAsync(packets.SelectMany(packet => packet).ToArray(), SocketFlags.None).Within();

    /// <summary>Waits until at least <paramref name="count"/> bytes the adapter sent lie unread in this socket.</summary>
    public Task WaitUntilUnreadAsync(int count) => Task.Run(async () =>
    {
        while (Socket.Available < count)
        {
            await Task.Delay(10);
        }
    }).Within();

    /// <summary>
    /// Reads what the adapter sends until its Disconnect or Reset: the plaintext of its data packets
    /// before it, and the reason the closing packet gave. Fails if the socket ends first.
    /// </summary>
    public async Task<(byte[] Plaintext, OssuaryErrorReason Ended)> ReadUntilEndedAsync()
    {
        var plaintext = new ArrayBufferWriter<byte>();
        while (true)
        {
            while (_buffered > 0)
            {
                OssuaryReceiveResult result = Session.Receive(new ReadOnlySequence<byte>(_buffer, 0, _buffered), plaintext, out SequencePosition consumed, out _);
                int used = consumed.GetInteger();
                Buffer.BlockCopy(_buffer, used, _buffer, 0, _buffered - used);
                _buffered -= used;
                if (result.Status is OssuaryReceiveStatus.Closed or OssuaryReceiveStatus.Reset)
                {
                    return (plaintext.WrittenSpan.ToArray(), result.Reason);
                }

                if (result.Status == OssuaryReceiveStatus.NeedMoreData)
                {
                    break;
                }
            }

            int read = await Socket.ReceiveAsync(_buffer.AsMemory(_buffered), SocketFlags.None).Within();
            Assert.True(read > 0, $"the socket ended after {plaintext.WrittenCount} bytes, without a Disconnect");
            _buffered += read;
        }
    }

    private async Task SendHandshakeAsync()
    {
        var output = new ArrayBufferWriter<byte>();
        while (Session.WriteHandshake(output) > 0)
        {
        }

        if (output.WrittenCount > 0)
        {
            await Socket.SendAsync(output.WrittenMemory, SocketFlags.None).AsTask().Within();
        }
    }

    public void Dispose()
    {
        Session.Dispose();
        Socket.Dispose();
    }
}
