using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A <c>UseOssuary</c> handler that writes far more than a client that reads nothing can take, and returns:
/// our Disconnect goes behind it, the client is behind, and the server waits for the client's close (the
/// linger). The kernel gives the connection up meanwhile (the client's window stays closed and the server's
/// TCP_USER_TIMEOUT ends its probing); the send gets the error, and Kestrel's receive then reads the dead
/// socket's end as a FIN. The linger took that for the client's close and ended in silence, though the
/// client never got the last bytes nor the Disconnect: it must say so, at Debug (the peer's or the
/// network's doing), as it says a socket error during the wait.
/// </summary>
public class TornDownDuringTheLingerTests
{
    // Linux's IPPROTO_TCP option TCP_USER_TIMEOUT (milliseconds).
    private const int IpProtocolTcp = 6;
    private const int TcpUserTimeout = 18;
    private const int ConnectionFailed = 5;
    private const int ConnectionFaulted = 7;

    [Fact]
    public async Task AConnectionTheKernelGaveUpDuringTheLingerIsNotTakenForThePeersClose()
    {
        Assert.True(OperatingSystem.IsLinux(), "TCP_USER_TIMEOUT and TCP_INFO's state are Linux's");
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.UseOssuary(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(30)));
                listen.Run(async connection =>
                {
                    // The kernel gives up probing the client's closed window this long after it began
                    // (well within the linger's 5 s).
                    Socket socket = connection.Features.Get<IConnectionSocketFeature>()!.Socket;
                    socket.SetRawSocketOption(IpProtocolTcp, TcpUserTimeout, BitConverter.GetBytes(1000));

                    // Far more than the client's small receive buffer and this socket's send buffer (at most 4 MiB) hold.
                    PipeWriter output = connection.Transport.Output;
                    output.Write(new byte[16 * 1024 * 1024]);
                    await output.CompleteAsync();
                });
            }),
            builder => builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug));

        // A client that handshakes and then reads nothing, with a receive buffer too small to take much.
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 16 * 1024 };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, host.Port())).Within();
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = keys.Client };
        options.AuthorizedKeys.Add(keys.Server.PublicKey);
        using var client = new SessionSocketPeer(socket, new OssuarySession(options));
        await client.HandshakeAsync();

        // Said once the linger has ended (before: never, the wait ran out here).
        await HostilePeerTests.WaitForAsync(() => Failures(logs).Count > 0);

        FakeLogRecord logged = Assert.Single(Failures(logs));
        Assert.Equal((ConnectionFailed, LogLevel.Debug), (logged.Id.Id, logged.Level));
        OssuaryException said = Assert.IsType<OssuaryException>(logged.Exception);
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, said.Reason);
        Assert.Contains("torn down", said.Message, StringComparison.Ordinal);
    }

    private static List<FakeLogRecord> Failures(FakeLoggerProvider logs) =>
        [.. logs.Collector.GetSnapshot().Where(r => r.Category?.StartsWith("Ossuary", StringComparison.Ordinal) == true && r.Id.Id is ConnectionFailed or ConnectionFaulted)];
}
