using System.Net.Sockets;
using System.Runtime.InteropServices;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// What a socket's kernel still holds when the connection ends, which decides whether closing the
/// socket now is safe. A socket closed with bytes of the peer's unread, or receiving bytes once closed
/// (a peer still sending), sends a reset, and the reset throws away what this side's kernel has not
/// seen acknowledged yet: the last frames and the Disconnect.
/// </summary>
internal static partial class SocketQueues
{
    // Linux's SIOCOUTQ (TIOCOUTQ): the bytes in a TCP socket's send queue, sent or not, that the peer has not acknowledged.
    private const nuint SiocOutQ = 0x5411;

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
    /// Bytes written before our Disconnect that the peer has not acknowledged yet (Linux; elsewhere
    /// false): a reset now would drop them. The Disconnect alone does not count, so that a connection
    /// whose data was all delivered closes at once, as before.
    /// </summary>
    public static bool HasUndeliveredData(Socket socket)
    {
        if (!OperatingSystem.IsLinux() || socket.ProtocolType != ProtocolType.Tcp)
        {
            return false;
        }

        bool added = false;
        SafeSocketHandle handle = socket.SafeHandle;
        try
        {
            handle.DangerousAddRef(ref added);
            return ioctl((int)handle.DangerousGetHandle(), SiocOutQ, out int queued) == 0 && queued > OssuarySession.ControlPacketSize;
        }
        catch (ObjectDisposedException)
        {
            return false; // already closed
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

#pragma warning disable SA1300, IDE1006 // libc's name
    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(int fd, nuint request, out int value);
#pragma warning restore SA1300, IDE1006
}
