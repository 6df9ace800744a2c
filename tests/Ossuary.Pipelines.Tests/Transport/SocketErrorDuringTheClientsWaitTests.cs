using System.Buffers.Binary;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A client (here an <see cref="OssuaryStream"/> over a socket it owns) disposed while its server is still
/// sending and behind with what the client wrote waits for the server to close its end (see
/// ResetDuringTheClientsWaitTests). A socket error that is not a reset ends that wait too: the kernel gave
/// up on the connection (its retransmission, keep-alive or user timeout), and the client's last bytes and
/// Disconnect never reached the server. The network's or the peer's doing, so logged at Debug (event 5)
/// with the socket's error inside; it ended the wait in silence. The error is the kernel's own: a server
/// that never reads closes its window, and the client's TCP_USER_TIMEOUT ends its probing of that window.
/// </summary>
public class SocketErrorDuringTheClientsWaitTests
{
    // Linux's IPPROTO_TCP options: TCP_INFO (tcpi_notsent_bytes at 144) and TCP_USER_TIMEOUT (milliseconds).
    private const int IpProtocolTcp = 6;
    private const int TcpInfo = 11;
    private const int TcpUserTimeout = 18;

    [Fact]
    public async Task ASocketErrorWhileTheClientWaitsForTheServersCloseIsLoggedAsThePeers()
    {
        Assert.True(OperatingSystem.IsLinux(), "TCP_USER_TIMEOUT and tcpi_notsent_bytes are Linux's");
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        var options = new OssuarySessionOptions { Role = OssuaryRole.AuthenticatedServer, Identity = keys.Server };
        options.AuthorizedKeys.Add(keys.Client.PublicKey);
        using var server = new SessionSocketPeer(serverSide.Socket, new OssuarySession(options));
        await using var client = new OssuaryStream(clientSide);
        OssuaryClientOptions clientOptions = keys.ClientOptions();
        clientOptions.LoggerFactory = loggers;
        await Task.WhenAll(server.HandshakeAsync(), client.AuthenticateAsClientAsync(clientOptions)).Within();

        // Far more than the client's input holds: the rest waits in its socket when it says goodbye, so it
        // waits for the server's close, and only that wait reads what the socket says after its input filled.
        byte[] frame = new byte[OssuarySession.MaxPlaintextLength];
        _ = server.SendTogetherAsync([.. Enumerable.Range(0, 64).Select(_ => server.DataPacket(frame))]);

        // The server reads nothing: the client writes until its bytes wait unsent behind the server's closed
        // window (a window merely too small to send into is not probed; far more than it held is past that).
        Socket socket = clientSide.Socket;
        while (NotSent(socket) < 1024 * 1024)
        {
            await client.WriteAsync(frame).AsTask().Within();
        }

        await Task.Run(async () =>
        {
            while (socket.Available == 0)
            {
                await Task.Delay(10);
            }
        }).Within();

        // The kernel gives up probing the closed window this long after it began: ETIMEDOUT, not a reset.
        socket.SetRawSocketOption(IpProtocolTcp, TcpUserTimeout, BitConverter.GetBytes(1000));
        await client.DisposeAsync().AsTask().Within();

        FakeLogRecord failed = Assert.Single(LogRecords.Records(logs, 5));
        Assert.Equal(LogLevel.Debug, failed.Level);
        OssuaryException said = Assert.IsType<OssuaryException>(failed.Exception);
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, said.Reason);
        Assert.Contains("waited for the peer to close its end", said.Message, StringComparison.Ordinal);
        SocketException error = Assert.IsType<SocketException>(said.InnerException?.InnerException);
        Assert.Equal(SocketError.TimedOut, error.SocketErrorCode);
        Assert.Empty(LogRecords.Records(logs, 7));
    }

    private static uint NotSent(Socket socket)
    {
        Span<byte> info = stackalloc byte[232];
        int length = socket.GetRawSocketOption(IpProtocolTcp, TcpInfo, info);
        Assert.True(length >= 148, "tcpi_notsent_bytes is Linux 4.6's");
        return BinaryPrimitives.ReadUInt32LittleEndian(info[144..]);
    }
}
