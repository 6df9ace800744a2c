using System.Buffers.Binary;
using System.Net.Sockets;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// What a socket's kernel still holds when the connection ends, which decides whether closing the
/// socket now is safe. A socket closed with bytes of the peer's unread, or receiving bytes once closed
/// (a peer still sending), sends a reset, and the reset throws away what this side's kernel has not
/// seen acknowledged yet: the last frames and the Disconnect.
/// </summary>
internal static class SocketQueues
{
    // Linux's TCP_INFO (struct tcp_info): tcpi_notsent_bytes, the bytes queued and not yet sent (Linux 4.6 and later).
    private const int IpProtocolTcp = 6;
    private const int TcpInfo = 11;
    private const int TcpInfoLength = 232;
    private const int NotSentOffset = 144;

    // tcpi_state (the first byte of struct tcp_info): TCP_CLOSE.
    private const byte TcpStateClose = 7;

    /// <summary>Bytes of the peer's wait unread in the socket.</summary>
    public static bool HasUnreadBytes(Socket socket)
    {
        try
        {
            return socket.Available > 0;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return false; // already closed or reset
        }
    }

    /// <summary>
    /// Whether the kernel has torn the connection down (Linux; elsewhere false): its state is CLOSE, not the
    /// CLOSE_WAIT a peer's close leaves while this side has not closed, or the socket has been disposed under
    /// us. A connection the kernel gave up (a retransmission, window-probe or user timeout) reads as an end of
    /// input once the error has gone to a send, and Kestrel reads it as the peer's FIN, disposing the socket
    /// as its send loop fails: neither is a close of the peer's, and what it had not received is lost.
    /// </summary>
    public static bool WasTornDown(Socket socket)
    {
        if (!OperatingSystem.IsLinux() || socket.ProtocolType != ProtocolType.Tcp)
        {
            return false;
        }

        Span<byte> info = stackalloc byte[TcpInfoLength];
        try
        {
            return socket.GetRawSocketOption(IpProtocolTcp, TcpInfo, info) >= 1 && info[0] == TcpStateClose;
        }
        catch (ObjectDisposedException)
        {
            return true; // the transport closed it: over a socket whose output we have not completed, only as it failed
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// Whether the peer is behind with what this side sent (Linux; elsewhere false): bytes wait in the
    /// send queue unsent, because the peer's window is full (it reads more slowly than we wrote) or
    /// the link is. A reset now would drop them. Bytes sent and not yet acknowledged do not count:
    /// after any last write (the handshake's, the Disconnect) a delayed acknowledgement holds them
    /// back for up to 40 ms, and a peer that does not close at once (its application busy elsewhere)
    /// would then hold every disposal for its whole time. A connection whose peer keeps up closes at
    /// once, as before.
    /// </summary>
    public static bool PeerIsBehind(Socket socket)
    {
        if (!OperatingSystem.IsLinux() || socket.ProtocolType != ProtocolType.Tcp)
        {
            return false;
        }

        Span<byte> info = stackalloc byte[TcpInfoLength];
        try
        {
            int length = socket.GetRawSocketOption(IpProtocolTcp, TcpInfo, info);
            return length >= NotSentOffset + 4 && BinaryPrimitives.ReadUInt32LittleEndian(info[NotSentOffset..]) > 0;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return false; // already closed or reset
        }
    }
}
