using System.Net;
using System.Net.Sockets;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>
/// Plain TCP (accept loop, NetworkStream on both ends, as <c>tcp</c>) carrying the packets of an
/// <c>ossuary</c> bench connection: the same count, order and sizes (ClientHandshake, ServerHandshake,
/// ClientAuthentication, a data packet each way per ping, Disconnect and the server's Reset in
/// answer), with no crypto and no adapter. What the protocol's messages cost on the wire, so that
/// the handshake ceiling can include them. Handshakes only: it has no bulk transfer or idle read.
/// </summary>
internal sealed class TcpPacketsTarget : BenchTarget
{
    // The first byte of a client packet after the handshake says which it is; the sizes are Ossuary's.
    private const byte PingKind = (byte)'P';
    private const byte FarewellKind = (byte)'D';

    private readonly SocketListener _listener;
    private readonly OssuaryPacketSizes _sizes;

    // What the clients send, made once and only read (a ceiling carries no allocation it can avoid).
    private readonly byte[] _clientHandshake;
    private readonly byte[] _clientAuthentication;
    private readonly byte[] _ping;
    private readonly byte[] _farewell;

    public TcpPacketsTarget(OssuaryPacketSizes sizes)
    {
        _sizes = sizes;
        _clientHandshake = new byte[sizes.ClientHandshake];
        _clientAuthentication = new byte[sizes.ClientAuthentication];
        _ping = PacketOf(PingKind, sizes.Data);
        _farewell = PacketOf(FarewellKind, sizes.Farewell);
        _listener = new SocketListener(ServeAsync, ReportServerError);
    }

    public override string Name => "tcp-packets";

    public override string Description => "plain TCP carrying an ossuary connection's packets (same count and sizes), no crypto";

    public override IPEndPoint EndPoint => _listener.EndPoint;

    public override int OpenServerConnections => _listener.OpenConnections;

    public override async Task<IBenchClient> ConnectAsync(CancellationToken cancellationToken)
    {
        var stream = new NetworkStream(await TcpTarget.ConnectSocketAsync(EndPoint, cancellationToken).ConfigureAwait(false), ownsSocket: true);
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

    public override ValueTask DisposeAsync() => _listener.DisposeAsync();

    private async Task ServeAsync(Socket socket, CancellationToken cancellationToken)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        byte[] buffer = new byte[Math.Max(Math.Max(_sizes.ClientHandshake, _sizes.ServerHandshake), Math.Max(_sizes.ClientAuthentication, _sizes.Data))];
        await stream.ReadExactlyAsync(buffer.AsMemory(0, _sizes.ClientHandshake), cancellationToken).ConfigureAwait(false);
        await stream.WriteAsync(buffer.AsMemory(0, _sizes.ServerHandshake), cancellationToken).ConfigureAwait(false);
        await stream.ReadExactlyAsync(buffer.AsMemory(0, _sizes.ClientAuthentication), cancellationToken).ConfigureAwait(false);
        while (await stream.ReadAsync(buffer.AsMemory(0, 1), cancellationToken).ConfigureAwait(false) == 1)
        {
            if (buffer[0] == PingKind)
            {
                await stream.ReadExactlyAsync(buffer.AsMemory(1, _sizes.Data - 1), cancellationToken).ConfigureAwait(false);
                await stream.WriteAsync(buffer.AsMemory(0, _sizes.Data), cancellationToken).ConfigureAwait(false);
                continue;
            }

            await stream.ReadExactlyAsync(buffer.AsMemory(1, _sizes.Farewell - 1), cancellationToken).ConfigureAwait(false);
            try
            {
                // Ossuary's server answers an established peer's Disconnect with a Reset, to a client that is closing.
                await stream.WriteAsync(buffer.AsMemory(0, _sizes.Farewell), cancellationToken).ConfigureAwait(false);
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

    private sealed class Client(NetworkStream stream, TcpPacketsTarget target) : IBenchClient
    {
        private readonly byte[] _received = new byte[Math.Max(target._sizes.ServerHandshake, target._sizes.Data)];

        public async Task PingAsync(CancellationToken cancellationToken)
        {
            await stream.WriteAsync(target._ping, cancellationToken).ConfigureAwait(false);
            await ReadAsync(target._sizes.Data, cancellationToken).ConfigureAwait(false);
        }

        public ValueTask ReadAsync(int count, CancellationToken cancellationToken) => stream.ReadExactlyAsync(_received.AsMemory(0, count), cancellationToken);

        public Task SendBulkAsync(long count, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken) =>
            throw new NotSupportedException("tcp-packets measures handshakes only.");

        public void StartIdleRead() => throw new NotSupportedException("tcp-packets measures handshakes only.");

        public async ValueTask DisposeAsync()
        {
            try
            {
                await stream.WriteAsync(target._farewell).ConfigureAwait(false);
            }
            finally
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
