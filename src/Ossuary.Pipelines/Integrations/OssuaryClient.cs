using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// Connects to Ossuary servers over TCP, by address or host name, or over Unix domain sockets. For
/// code written against <c>IConnectionFactory</c>, use <see cref="OssuaryConnectionFactory"/>.
/// </summary>
public static class OssuaryClient
{
    /// <summary>
    /// Connects to <paramref name="endpoint"/>, runs the client handshake and returns the secured connection.
    /// A <see cref="DnsEndPoint"/> is resolved and every address tried in order (IPv6 and IPv4) until one
    /// accepts, each but the last given up on after its share of the time left (that time divided among the
    /// addresses left, at least 2 s), so that one that never answers leaves time for the next;
    /// <see cref="IPEndPoint"/> and <see cref="UnixDomainSocketEndPoint"/> are connected directly.
    /// Connecting is bounded by <see cref="OssuaryClientOptions.ConnectTimeout"/>, the handshake by
    /// <see cref="OssuaryClientOptions.HandshakeTimeout"/>.
    /// </summary>
    /// <remarks>
    /// A server that does not admit this client still completes the handshake; the refusal arrives as
    /// its Disconnect (error), which the connection's first read reports (see <see cref="OssuaryDuplexPipe"/>).
    /// </remarks>
    /// <exception cref="OssuaryException">The handshake failed or timed out; <see cref="OssuaryException.Reason"/> says why.</exception>
    /// <exception cref="SocketException">The endpoint could not be reached, its name did not resolve, or connecting timed out (<see cref="SocketError.TimedOut"/>).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="endpoint"/> or <paramref name="options"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The options are invalid; the message says what to fix.</exception>
    /// <exception cref="FormatException">The options' <see cref="OssuaryClientOptions.IdentityKeyFile"/> is malformed; the message names the file.</exception>
    /// <exception cref="IOException">The options' <see cref="OssuaryClientOptions.IdentityKeyFile"/> cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The options' <see cref="OssuaryClientOptions.IdentityKeyFile"/> may be read by other users (fix with <c>chmod 600</c>), is owned by another user (fix with <c>chown</c>; not checked on Windows), or cannot be opened.</exception>
    /// <exception cref="NotSupportedException"><paramref name="endpoint"/> is not an <see cref="IPEndPoint"/>, <see cref="DnsEndPoint"/> or <see cref="UnixDomainSocketEndPoint"/> (e.g. Kestrel's <c>UriEndPoint</c> or <c>NamedPipeEndPoint</c>).</exception>
    public static async Task<OssuaryClientConnection> ConnectAsync(EndPoint endpoint, OssuaryClientOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        HandshakePlan plan = HandshakePlan.ForClient(options);
        try
        {
            return await ConnectAsync(endpoint, plan, ConnectionTelemetry.For(plan), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            plan.ReleaseOwnIdentity(); // this connect's copy of a key file's secret: the handshake is over
        }
    }

    /// <summary>
    /// Opens the TCP or Unix socket that <see cref="ConnectAsync(EndPoint, OssuaryClientOptions, CancellationToken)"/>
    /// would, without a handshake: for code that puts its own stream between the socket and
    /// <see cref="OssuaryStream"/> or <see cref="OssuaryDuplexPipe.ConnectAsync(System.IO.Pipelines.IDuplexPipe, OssuaryClientOptions, EndPoint?, CancellationToken)"/>
    /// (a diagnostic recorder, a proxy protocol). Every address of a <see cref="DnsEndPoint"/> is
    /// tried in order, as by ConnectAsync (each but the last within its share of the time left); TCP sockets have Nagle's algorithm off, as Ossuary's frames are already batched.
    /// TCP keep-alive is not set (it is an <see cref="OssuaryClientOptions"/> setting, and these are not
    /// given): turn it on with <c>Socket.SetSocketOption</c> where a vanished server must be noticed.
    /// </summary>
    /// <param name="endpoint">An <see cref="IPEndPoint"/>, <see cref="DnsEndPoint"/> or <see cref="UnixDomainSocketEndPoint"/>.</param>
    /// <param name="connectTimeout">Bound on resolving and connecting; <see cref="Timeout.InfiniteTimeSpan"/> waits as long as the OS does.</param>
    /// <param name="cancellationToken">Cancels the attempt.</param>
    /// <returns>The connected socket, which the caller owns.</returns>
    /// <exception cref="SocketException">The endpoint could not be reached, its name did not resolve, or connecting timed out (<see cref="SocketError.TimedOut"/>).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="NotSupportedException"><paramref name="endpoint"/> is not an <see cref="IPEndPoint"/>, <see cref="DnsEndPoint"/> or <see cref="UnixDomainSocketEndPoint"/>.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="endpoint"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="connectTimeout"/> is neither positive nor <see cref="Timeout.InfiniteTimeSpan"/>.</exception>
    public static Task<Socket> ConnectSocketAsync(EndPoint endpoint, TimeSpan connectTimeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (connectTimeout <= TimeSpan.Zero && connectTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(connectTimeout), connectTimeout, "A connect timeout is positive or Timeout.InfiniteTimeSpan.");
        }

        return SocketConnector.ConnectAsync(endpoint, connectTimeout, cancellationToken);
    }

    internal static async Task<OssuaryClientConnection> ConnectAsync(EndPoint endpoint, HandshakePlan plan, ConnectionTelemetry telemetry, CancellationToken cancellationToken)
    {
        Socket socket = await SocketConnector.ConnectAsync(endpoint, plan.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        SocketDuplexPipe? pipe = null;
        try
        {
            // Read now: Socket fetches them lazily (getpeername), which fails once the peer has
            // reset the connection, e.g. a server that refused this client right after the
            // handshake. Read afterwards, a successful handshake surfaced as a SocketException.
            EndPoint? local = socket.LocalEndPoint;
            EndPoint? remote = socket.RemoteEndPoint;
            pipe = new SocketDuplexPipe(socket);

            // Log lines name the connection by the ConnectionId its user sees; made only for a logger.
            string? connectionId = telemetry.Logger == NullLogger.Instance ? null : Guid.NewGuid().ToString("N");
            ConnectionTelemetry connectionTelemetry = connectionId is null ? telemetry : telemetry with { ConnectionId = connectionId };
            EnableKeepAlive(socket, plan, connectionTelemetry);
            OssuaryDuplexPipe secure = await OssuaryDuplexPipe.StartAsync(pipe, plan.ForEndPoint(endpoint, remote), null,
                connectionTelemetry, cancellationToken).ConfigureAwait(false);
            var connection = new OssuaryClientConnection(secure, pipe, connectionTelemetry, local, remote);
            if (connectionId is not null)
            {
                connection.ConnectionId = connectionId;
            }

            return connection;
        }
        catch
        {
            if (pipe is not null)
            {
                await pipe.CloseSocketAsync().ConfigureAwait(false); // a handshake that failed or was cancelled left its receive in flight
            }

            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// TCP keep-alive on the connection's socket. A system without the options costs the connection its
    /// keep-alive, not the connection, as on a server: said at Error (limited per cause), and it goes on.
    /// A socket that refuses them (<see cref="SocketException"/>) fails the connect, as documented.
    /// </summary>
    private static void EnableKeepAlive(Socket socket, HandshakePlan plan, ConnectionTelemetry telemetry)
    {
        try
        {
            plan.KeepAliveSetter(socket, plan.TcpKeepAlive);
        }
        catch (PlatformNotSupportedException ex)
        {
            LogLevel level = telemetry.Faults.Next($"{nameof(OssuaryClientOptions.TcpKeepAlive)}: {ex.GetType().FullName}", out int heldBack);
            OssuaryLog.KeepAliveNotSet(telemetry.Logger, level, telemetry.ConnectionId, heldBack, ex);
        }
    }
}
