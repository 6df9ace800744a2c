using System.Net;
using System.Net.Sockets;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>
/// Plain TCP (accept loop, NetworkStream on both ends, as <c>tcp</c>) carrying the packets of an
/// <c>ossuary</c> bench connection (<see cref="PacketsExchange"/>), with no crypto and no adapter.
/// What the protocol's messages cost on the wire, so that the handshake ceiling can include them.
/// Handshakes only: it has no bulk transfer or idle read.
/// </summary>
internal sealed class TcpPacketsTarget : BenchTarget
{
    private readonly SocketListener _listener;
    private readonly PacketsExchange _exchange;

    public TcpPacketsTarget(OssuaryPacketSizes sizes)
    {
        _exchange = new PacketsExchange(sizes);
        _listener = new SocketListener(ServeAsync, ReportServerError);
    }

    public override string Name => "tcp-packets";

    public override string Description => "plain TCP carrying an ossuary connection's packets (same count and sizes), no crypto";

    public override IPEndPoint EndPoint => _listener.EndPoint;

    public override int OpenServerConnections => _listener.OpenConnections;

    public override Task<IBenchClient> ConnectAsync(CancellationToken cancellationToken) => _exchange.ConnectAsync(EndPoint, cancellationToken);

    public override ValueTask DisposeAsync() => _listener.DisposeAsync();

    private async Task ServeAsync(Socket socket, CancellationToken cancellationToken)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await _exchange.ServeAsync(stream, stream, cancellationToken).ConfigureAwait(false);
    }
}
