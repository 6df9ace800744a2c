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
/// A <c>UseOssuary</c> server waiting after its Disconnect for a client still sending to close its end,
/// whose transport fails with a socket error that is not a reset (Kestrel passes on such errors: a
/// vanished peer's keep-alive or retransmission timeout). The wait ends and the socket closes, and our
/// last frames and Disconnect may not have reached the client: the network's or the peer's doing, so
/// logged at Debug (event 5) with the socket's error inside. It ended the wait in silence.
/// The error is put into Kestrel's real transport by a middleware before <c>UseOssuary</c>, at the wait's
/// first look at the input (no real network times out on loopback within a test).
/// </summary>
public class SocketErrorDuringTheLingerTests
{
    private const int ConnectionFailed = 5;
    private const int ConnectionFaulted = 7;

    [Fact]
    public Task ASocketErrorWhileTheServerWaitsForTheClientsCloseIsLoggedAsThePeers() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        TimingOutReader? transport = null;
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.Use(next => connection =>
                {
                    transport = new TimingOutReader(connection.Transport.Input);
                    connection.Transport = new DuplexPipe(transport, connection.Transport.Output);
                    return next(connection);
                });
                listen.UseOssuary(o =>
                {
                    o.Identity = keys.Server;
                    o.AuthorizedClientKeys.Add(keys.Client.PublicKey);
                });
                listen.Run(async connection =>
                {
                    // Returns (its Disconnect goes out) once the client's bytes wait unread in the socket:
                    // it reads nothing, so the input and Kestrel's pipe are full before that, and the
                    // server waits for the client's close.
                    Socket socket = connection.Features.Get<IConnectionSocketFeature>()!.Socket;
                    while (socket.Available == 0)
                    {
                        await Task.Delay(10);
                    }

                    transport!.Arm();
                });
            }),
            builder => builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug));
        using SessionSocketPeer client = await SessionSocketPeer.ConnectClientAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), keys);

        // Sends until the server's socket is closed under it: the server logged before it let it close.
        // Each packet sealed anew: a packet sent twice breaks the protocol, which ends the connection first.
        try
        {
            while (true)
            {
                await client.Socket.SendAsync(client.DataPacket(new byte[OssuarySession.MaxPlaintextLength]), SocketFlags.None).Within();
            }
        }
        catch (SocketException)
        {
            // The server closed its socket with these bytes unread: reset.
        }

        Assert.True(transport!.Failed, "the server's wait never read its input: " + string.Join(" | ", logs.Collector.GetSnapshot().Select(r => r.Message)));
        FakeLogRecord logged = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id is ConnectionFailed or ConnectionFaulted);
        Assert.Equal((ConnectionFailed, LogLevel.Debug), (logged.Id.Id, logged.Level));
        OssuaryException said = Assert.IsType<OssuaryException>(logged.Exception);
        Assert.Equal(SocketError.TimedOut, Assert.IsType<SocketException>(said.InnerException).SocketErrorCode);
    });

    /// <summary>
    /// Kestrel's input, until armed: then the first look at it that waits for nothing (the linger's
    /// TryRead) makes the next read fail as a timed-out socket's does.
    /// </summary>
    private sealed class TimingOutReader(PipeReader inner) : PipeReader
    {
        private volatile bool _armed;
        private volatile bool _failNext;

        public bool Failed { get; private set; }

        public void Arm() => _armed = true;

        public override bool TryRead(out ReadResult result)
        {
            _failNext = _armed;
            return inner.TryRead(out result);
        }

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            if (_failNext)
            {
                Failed = true;
                throw new SocketException((int)SocketError.TimedOut);
            }

            return inner.ReadAsync(cancellationToken);
        }

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);
    }

    private static Task Run(Func<Task> test) => test().Within();
}
