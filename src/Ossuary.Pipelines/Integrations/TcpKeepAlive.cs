using System.Net.Sockets;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// TCP keep-alive on a connection's socket, so that a peer that vanished without closing (power
/// lost, cable pulled, a NAT that forgot the connection) is noticed: Ossuary has no ping of its own,
/// and a side that only reads (a telemetry server) would otherwise hold the connection forever.
/// After <c>time</c> without a packet from the peer the system probes it, then probes again every
/// quarter of <c>time</c>; after four unanswered probes (about twice <c>time</c> in all) the socket
/// fails, and with it the connection. A live peer answers from its kernel: idle connections stay up.
/// The system probes only a connection with nothing of ours unacknowledged: a side sending when its
/// peer vanished fails at its retransmission limit instead (about 15 minutes on Linux by default).
/// TCP_USER_TIMEOUT is not set: it would bound that, but Linux then also ends a live peer that keeps
/// its window closed (an application that stopped reading) after that time.
/// </summary>
internal static class TcpKeepAlive
{
    /// <summary>The default for servers and clients: a vanished peer is noticed within about two minutes.</summary>
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(60);

    private const int Probes = 4;
    private static readonly TimeSpan Longest = TimeSpan.FromSeconds(short.MaxValue); // Linux's TCP_KEEPIDLE limit

    /// <summary>True if <paramref name="time"/> asks for keep-alive (<see cref="Timeout.InfiniteTimeSpan"/> leaves the socket as the system has it).</summary>
    public static bool IsOn(TimeSpan time) => time != Timeout.InfiniteTimeSpan;

    /// <exception cref="InvalidOperationException"><paramref name="time"/> is neither 1 s to about 9 hours nor infinite; the message names <paramref name="owner"/>.</exception>
    public static void Validate(TimeSpan time, string owner, string inConfiguration)
    {
        if (IsOn(time) && (time < TimeSpan.FromSeconds(1) || time > Longest))
        {
            throw new InvalidOperationException(
                $"{owner}.TcpKeepAlive{inConfiguration} must be between 1 s and {Longest.TotalSeconds:0} s, or Timeout.InfiniteTimeSpan to leave keep-alive to the system (default {Default.TotalSeconds:0} s).");
        }
    }

    /// <summary>Turns keep-alive on for a TCP <paramref name="socket"/>; a Unix domain socket (no peer to lose) is left alone.</summary>
    /// <exception cref="SocketException">The system refused an option.</exception>
    /// <exception cref="PlatformNotSupportedException">The system has no such option.</exception>
    public static void Apply(Socket socket, TimeSpan time)
    {
        if (!IsOn(time) || socket.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            return;
        }

        int seconds = (int)Math.Ceiling(time.TotalSeconds);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, seconds);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, Math.Max(1, seconds / Probes));
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, Probes);
    }
}
