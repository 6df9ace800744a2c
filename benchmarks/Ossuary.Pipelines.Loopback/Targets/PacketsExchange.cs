using System.Net;
using System.Net.Sockets;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>
/// The packets of an <c>ossuary</c> bench connection, with no crypto and no adapter: the same count,
/// order and sizes (ClientHandshake, ServerHandshake, ClientAuthentication, a data packet each way per
/// ping, Disconnect and the server's Reset in answer). The client end over a NetworkStream, and the
/// server end over any pair of streams (a socket's, or a Kestrel connection's pipes), for the targets
/// that put the protocol's messages on the wire without the protocol: <c>tcp-packets</c> and
/// <c>tcp-packets-kestrel</c>.
/// </summary>
internal sealed class PacketsExchange
{
    // The first byte of a client packet after the handshake says which it is; the sizes are Ossuary's.
    private const byte PingKind = (byte)'P';
    private const byte FarewellKind = (byte)'D';

    private readonly OssuaryPacketSizes _sizes;

    // What the clients send, made once and only read (a ceiling carries no allocation it can avoid).
    private readonly byte[] _clientHandshake;
    private readonly byte[] _clientAuthentication;
    private readonly byte[] _ping;
    private readonly byte[] _farewell;

    public PacketsExchange(OssuaryPacketSizes sizes)
    {
        _sizes = sizes;
        _clientHandshake = new byte[sizes.ClientHandshake];
        _clientAuthentication = new byte[sizes.ClientAuthentication];
        _ping = PacketOf(PingKind, sizes.Data);
        _farewell = PacketOf(FarewellKind, sizes.Farewell);
    }

    /// <summary>Connects to <paramref name="endPoint"/> and exchanges the handshake's three packets.</summary>
    public async Task<IBenchClient> ConnectAsync(IPEndPoint endPoint, CancellationToken cancellationToken)
    {
        var stream = new NetworkStream(await TcpTarget.ConnectSocketAsync(endPoint, cancellationToken).ConfigureAwait(false), ownsSocket: true);
        try
        {
            var client = new Client(stream, this);
            await stream.WriteAsync(_clientHandshake, cancellationToken).ConfigureAwait(false);
            await client.ReadAsync(_sizes.ServerHandshake, cancellationToken).ConfigureAwait(false);
            await stream.WriteAsync(_clientAuthentication, cancellationToken).ConfigureAwait(false);
            return client;
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The server's end of one connection: reads from <paramref name="input"/>, answers on <paramref name="output"/>.</summary>
    public async Task ServeAsync(Stream input, Stream output, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[Math.Max(Math.Max(_sizes.ClientHandshake, _sizes.ServerHandshake), Math.Max(_sizes.ClientAuthentication, _sizes.Data))];
        await input.ReadExactlyAsync(buffer.AsMemory(0, _sizes.ClientHandshake), cancellationToken).ConfigureAwait(false);
        await output.WriteAsync(buffer.AsMemory(0, _sizes.ServerHandshake), cancellationToken).ConfigureAwait(false);
        await input.ReadExactlyAsync(buffer.AsMemory(0, _sizes.ClientAuthentication), cancellationToken).ConfigureAwait(false);
        while (await input.ReadAsync(buffer.AsMemory(0, 1), cancellationToken).ConfigureAwait(false) == 1)
        {
            if (buffer[0] == PingKind)
            {
                await input.ReadExactlyAsync(buffer.AsMemory(1, _sizes.Data - 1), cancellationToken).ConfigureAwait(false);
                await output.WriteAsync(buffer.AsMemory(0, _sizes.Data), cancellationToken).ConfigureAwait(false);
                continue;
            }

            await input.ReadExactlyAsync(buffer.AsMemory(1, _sizes.Farewell - 1), cancellationToken).ConfigureAwait(false);
            try
            {
                // Ossuary's server answers an established peer's Disconnect with a Reset, to a client that is closing.
                await output.WriteAsync(buffer.AsMemory(0, _sizes.Farewell), cancellationToken).ConfigureAwait(false);
            }
            catch (IOException)
            {
            }

            return;
        }
    }

    private static byte[] PacketOf(byte kind, int size)
    {
        byte[] packet = new byte[size];
        packet[0] = kind;
        return packet;
    }

    private sealed class Client(NetworkStream stream, PacketsExchange exchange) : IBenchClient
    {
        private readonly byte[] _received = new byte[Math.Max(exchange._sizes.ServerHandshake, exchange._sizes.Data)];

        public async Task PingAsync(CancellationToken cancellationToken)
        {
            await stream.WriteAsync(exchange._ping, cancellationToken).ConfigureAwait(false);
            await ReadAsync(exchange._sizes.Data, cancellationToken).ConfigureAwait(false);
        }

        public ValueTask ReadAsync(int count, CancellationToken cancellationToken) => stream.ReadExactlyAsync(_received.AsMemory(0, count), cancellationToken);

        public Task SendBulkAsync(long count, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken) =>
            throw new NotSupportedException("the packets targets measure handshakes only.");

        public void StartIdleRead() => throw new NotSupportedException("the packets targets measure handshakes only.");

        public async ValueTask DisposeAsync()
        {
            try
            {
                await stream.WriteAsync(exchange._farewell).ConfigureAwait(false);
            }
            finally
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
