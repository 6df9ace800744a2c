using System.Net;
using System.Net.Sockets;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>How the server ended a raw connection, as its peer saw it.</summary>
/// <param name="Closed">False if the connection was still open when the peer stopped waiting.</param>
/// <param name="Reset">The end was a reset (RST) rather than an orderly EOF.</param>
/// <param name="BytesReceived">What the server sent before it closed.</param>
internal readonly record struct PeerClose(bool Closed, bool Reset, int BytesReceived);

/// <summary>A plain TCP peer that speaks no Ossuary at all: it connects, maybe sends something, and watches for the close.</summary>
internal static class RawPeer
{
    public static async Task<Socket> ConnectAsync(EndPoint server)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(server).Within();
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads until EOF or a reset, or until <paramref name="limit"/> has passed (then <see cref="PeerClose.Closed"/> is false).</summary>
    public static async Task<PeerClose> WaitForCloseAsync(Socket socket, TimeSpan limit)
    {
        using var giveUp = new CancellationTokenSource(limit);
        byte[] buffer = new byte[1024];
        int received = 0;
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, giveUp.Token) is int n and > 0)
            {
                received += n;
            }

            return new PeerClose(Closed: true, Reset: false, received);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
        {
            return new PeerClose(Closed: true, Reset: true, received);
        }
        catch (OperationCanceledException) when (giveUp.IsCancellationRequested)
        {
            return new PeerClose(Closed: false, Reset: false, received);
        }
    }

    /// <summary>Sends, ignoring the failure of a server that has already closed (it may, while bytes are still arriving).</summary>
    public static async Task<bool> TrySendAsync(Socket socket, ReadOnlyMemory<byte> bytes)
    {
        try
        {
            await socket.SendAsync(bytes, SocketFlags.None).AsTask().Within();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
