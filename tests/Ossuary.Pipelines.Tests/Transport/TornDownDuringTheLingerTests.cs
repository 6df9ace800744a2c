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
/// network's doing), as it says a socket error during the wait. When the kernel gives up while the last
/// flush still waits (1 run in 12 here, under load), the send and the receive both fail instead, and
/// the outbound loop (its flush finds the output ended) and the inbound loop (its read throws ETIMEDOUT,
/// or ends as at a FIN: a truncated connection) each said so: two lines for one end. Whichever loop
/// comes first says it, once.
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
        var served = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen =>
            {
                // Outside UseOssuary: its middleware returns once the connection's disposal has ended both loops.
                listen.Use(next => async connection =>
                {
                    await next(connection);
                    served.TrySetResult();
                });
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

        // Said once the linger has ended (before: never, the wait ran out here); both loops have had their say
        // once the connection is over.
        await served.Task.Within();

        List<FakeLogRecord> failures = Failures(logs);
        Assert.True(failures.Count == 1, string.Join("\n", failures.Select(r => r.Exception?.ToString())));
        FakeLogRecord logged = failures[0];
        Assert.Equal((ConnectionFailed, LogLevel.Debug), (logged.Id.Id, logged.Level));
        OssuaryException said = Assert.IsType<OssuaryException>(logged.Exception);
        Assert.True(
            (said.Reason == OssuaryErrorReason.ConnectionFailed
                && (said.Message.Contains("torn down", StringComparison.Ordinal) // the linger's
                    || said.Message.Contains("did not reach the peer", StringComparison.Ordinal) // the outbound loop's
                    || said.Message.Contains("timed out", StringComparison.Ordinal))) // the inbound loop's read
                || said.Reason == OssuaryErrorReason.Truncated, // the inbound loop's, the end read as a FIN
            $"{said.Reason}: {said.Message}");
    }

    private static List<FakeLogRecord> Failures(FakeLoggerProvider logs) =>
        [.. logs.Collector.GetSnapshot().Where(r => r.Category?.StartsWith("Ossuary", StringComparison.Ordinal) == true && r.Id.Id is ConnectionFailed or ConnectionFaulted)];
}
