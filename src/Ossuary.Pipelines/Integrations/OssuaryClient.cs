using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>Connects to Ossuary servers over TCP (or any socket endpoint, Unix sockets included).</summary>
public static class OssuaryClient
{
    /// <summary>Connects, runs the client handshake and returns the secured connection.</summary>
    /// <exception cref="OssuaryException">The handshake failed or timed out; <see cref="OssuaryException.Reason"/> says why.</exception>
    /// <exception cref="SocketException">The endpoint could not be reached.</exception>
    public static async Task<OssuaryClientConnection> ConnectAsync(EndPoint endpoint, OssuaryClientOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        HandshakePlan plan = HandshakePlan.ForClient(options);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, endpoint is UnixDomainSocketEndPoint ? ProtocolType.Unspecified : ProtocolType.Tcp);
        StreamDuplexPipe? pipe = null;
        try
        {
            if (endpoint is not UnixDomainSocketEndPoint)
            {
                socket.NoDelay = true;
            }

            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);

            // Read now: Socket fetches them lazily (getpeername), which fails once the peer has
            // reset the connection, e.g. a server that refused this client right after the
            // handshake. Read afterwards, a successful handshake surfaced as a SocketException.
            EndPoint? local = socket.LocalEndPoint;
            EndPoint? remote = socket.RemoteEndPoint;
            pipe = new StreamDuplexPipe(new NetworkStream(socket, ownsSocket: true), leaveOpen: false);
            OssuaryDuplexPipe secure = await OssuaryDuplexPipe.StartAsync(pipe, plan, null, ConnectionTelemetry.None, cancellationToken).ConfigureAwait(false);
            return new OssuaryClientConnection(secure, pipe, local, remote);
        }
        catch
        {
            if (pipe is not null)
            {
                await pipe.DisposeStreamAsync().ConfigureAwait(false);
            }

            socket.Dispose();
            throw;
        }
    }
}
