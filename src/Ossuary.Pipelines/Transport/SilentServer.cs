using System.Net.Sockets;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// A client's failure when the server ended the connection before a byte of its handshake had come. The wire carries
/// no reason, and a cut handshake alone sent the operator looking at the network: a <c>UseOssuary</c> server at its
/// <c>MaxPendingHandshakes</c> closes a connection unheard, and so does a listener that is not an Ossuary server.
/// </summary>
internal static class SilentServer
{
    private const string MayBe = "it may be at its limit of handshakes in progress (MaxPendingHandshakes), or not an Ossuary server.";

    /// <summary>The server's end of the connection came first (EOF).</summary>
    public static OssuaryException Closed() =>
        new(OssuaryErrorReason.Truncated, $"The server closed the connection before its first handshake packet: {MayBe}");

    /// <summary>
    /// A transport's failure that is the peer's reset (as a <c>NetworkStream</c> and the client's socket pipe say it), not
    /// another of the network's failures, which the client reports as it did: only a reset says the server closed.
    /// </summary>
    public static bool IsReset(IOException ex) =>
        ex is not OssuaryException && ex.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset };

    /// <summary>The server's socket reset the connection (closed with our ClientHandshake unread).</summary>
    public static OssuaryException Reset(IOException cause) =>
        new(OssuaryErrorReason.ConnectionFailed, $"The server reset the connection before its first handshake packet ({cause.Message}): {MayBe}", cause);
}
