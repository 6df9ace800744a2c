using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Loopback.Wire;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>Plain TCP through NetworkStream on both ends: the ceiling of the path.</summary>
internal sealed class TcpTarget : BenchTarget
{
    private readonly SocketListener _listener;

    public TcpTarget()
    {
        _listener = new SocketListener(ServeAsync, ReportServerError);
    }

    public override string Name => "tcp";

    public override string Description => "plain TCP, NetworkStream on both ends";

    public override IPEndPoint EndPoint => _listener.EndPoint;

    public override int OpenServerConnections => _listener.OpenConnections;

    public override async Task<IBenchClient> ConnectAsync(CancellationToken cancellationToken) =>
        new StreamBenchClient(new NetworkStream(await ConnectSocketAsync(EndPoint, cancellationToken).ConfigureAwait(false), ownsSocket: true));

    public override ValueTask DisposeAsync() => _listener.DisposeAsync();

    /// <summary>A connected loopback socket with Nagle off, as every target's client uses.</summary>
    public static async Task<Socket> ConnectSocketAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task ServeAsync(Socket socket, CancellationToken cancellationToken)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await BenchWire.ServeAsync(stream, cancellationToken).ConfigureAwait(false);
    }
}
