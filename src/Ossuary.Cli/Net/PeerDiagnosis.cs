using Ossuary.Pipelines;

namespace Ossuary.Cli.Net;

/// <summary>
/// Turns a failed handshake into what happened from the user's point of view: a peer that is not
/// Ossuary at all (named by what it sent), a silent one, one that hung up.
/// </summary>
internal static class PeerDiagnosis
{
    /// <summary>A sentence about a handshake that failed for a reason that says the peer is not speaking Ossuary; null for other reasons.</summary>
    /// <param name="ex">The handshake's failure.</param>
    /// <param name="socket">The connection, which kept the first bytes the peer sent.</param>
    /// <param name="peer">How to name the peer ("127.0.0.1:8000", "connection from 127.0.0.1:40112").</param>
    /// <param name="handshakeTimeout">The bound the handshake had, for the message of a silent peer.</param>
    /// <param name="peerIsServer">
    /// Whether the peer is the server: a server that closes before its first handshake packet may also be turning
    /// connections away at its limit of handshakes in progress, which a client never does.
    /// </param>
    public static string? NotOssuary(OssuaryException ex, SocketPipe socket, string peer, TimeSpan handshakeTimeout, bool peerIsServer)
    {
        string? first = socket.DescribeFirstBytes();
        switch (ex.Reason)
        {
            case OssuaryErrorReason.OversizedPacket or OssuaryErrorReason.MessageIdMismatch or OssuaryErrorReason.WrongProtocolVersion
                or OssuaryErrorReason.UnexpectedPacketSize or OssuaryErrorReason.UnexpectedPacket or OssuaryErrorReason.Truncated
                when first is not null:
                return $"{peer} does not speak Ossuary; it sent '{first}'";
            case OssuaryErrorReason.Truncated when peerIsServer:
                return $"{peer} closed the connection without answering the Ossuary handshake; it does not seem to speak Ossuary, "
                    + "or it is at its limit of handshakes in progress (an Ossuary server closes the connections past it unheard)";
            case OssuaryErrorReason.Truncated:
                return $"{peer} closed the connection without answering the Ossuary handshake; it does not seem to speak Ossuary";
            case OssuaryErrorReason.HandshakeTimeout when first is null:
                return $"{peer} sent nothing within the handshake timeout ({CliOptions.Describe(handshakeTimeout)}); it does not speak Ossuary, or it is stalled";
            case OssuaryErrorReason.HandshakeTimeout:
                return $"{peer} did not complete the Ossuary handshake within {CliOptions.Describe(handshakeTimeout)}; it sent '{first}'";
            default:
                return null;
        }
    }
}
