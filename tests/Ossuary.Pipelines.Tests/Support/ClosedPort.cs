using System.Net;
using System.Net.Sockets;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A loopback port that refuses connections for as long as this lives: a socket holds it bound but
/// never listens. A port found free and let go again is not closed for long: another test's server
/// (port 0) can be given it, and a client's own end can be too, which on Linux connects the client
/// to itself (TCP simultaneous open) instead of being refused.
/// </summary>
internal sealed class ClosedPort : IDisposable
{
    private readonly Socket _holder;

    /// <param name="bothFamilies">Holds the port on ::1 as well as on 127.0.0.1 (one IPv6 socket in dual mode).
    /// On a machine without IPv6 (a container with it turned off), the IPv4 port alone: a connect to
    /// ::1 fails there anyway, and nothing can take the port on a family that does not exist.</param>
    public ClosedPort(bool bothFamilies = false)
    {
        _holder = (bothFamilies && Socket.OSSupportsIPv6 ? TryHoldBothFamilies() : null) ?? HoldIPv4();
        Port = ((IPEndPoint)_holder.LocalEndPoint!).Port;
    }

    public int Port { get; }

    public void Dispose() => _holder.Dispose();

    private static Socket? TryHoldBothFamilies()
    {
        var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.DualMode = true;
            socket.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
            return socket;
        }
        catch (SocketException)
        {
            socket.Dispose();
            return null;
        }
    }

    private static Socket HoldIPv4()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }
}
