using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Hardening;

/// <summary>
/// A peer that disappears over real TCP — closing its socket (FIN) or aborting it (RST) — in the
/// middle of a frame, in the middle of the handshake, or right after its Disconnect. Each side
/// in turn is the one left behind: the Kestrel handler, then the OssuaryClient connection.
/// </summary>
public class VanishingPeerTests
{
    // A hang guard on each step that waits for the other end. The handshake's own waits (see
    // Patient) are far longer than it and than the test's whole limit, so nothing but the vanishing
    // can end a handshake here: that the right failure comes at all is what the tests check, not how fast.
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan StepWait = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan HandshakeBound = TimeSpan.FromMinutes(20);

    [Theory]
    [InlineData(false, OssuaryErrorReason.Truncated)]
    [InlineData(true, OssuaryErrorReason.ConnectionFailed)] // Kestrel completes its input with ConnectionResetException
    public Task ClientVanishingMidFrameFailsTheServerHandlersInput(bool abortive, OssuaryErrorReason expected) => Run(async () =>
    {
        var logs = new FakeLoggerProvider();
        await using var server = await AuthenticatedEchoServer.StartAsync(KestrelLoad.LogEverythingTo(logs, LogLevel.Debug));
        int frames = 0;
        await using var socket = new VanishingSocket(await RawPeer.ConnectAsync(server.Server.EndPoint), HalfOfDataFrame(2, () => ++frames), abortive);
        await using OssuaryDuplexPipe client = await OssuaryDuplexPipe.ConnectAsync(socket.Transport, server.ClientOptions).Within();

        await client.Output.WriteAsync("first words"u8.ToArray());
        Assert.Equal("first words"u8.ToArray(), await PipeReads.ReadExactlyAsync(client.Input, 11).Within());
        await client.Output.WriteAsync("never whole"u8.ToArray());
        await socket.Vanished.Within();

        OssuaryException failure = Assert.IsType<OssuaryException>(await server.Server.Log.NextOutcomeAsync().Within(Prompt));
        Assert.Equal(expected, failure.Reason);
        if (!abortive)
        {
            Assert.Contains("middle", failure.Message);
        }

        await AssertQuietAsync(logs, connectionFailed: 1);
    });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public Task ClientVanishingAfterItsClientHandshakeIsAQuietHandshakeFailure(bool abortive) => Run(async () =>
    {
        var logs = new FakeLoggerProvider();
        await using var server = await AuthenticatedEchoServer.StartAsync(KestrelLoad.LogEverythingTo(logs, LogLevel.Debug), Patient);
        using (Socket socket = await RawPeer.ConnectAsync(server.Server.EndPoint))
        {
            await socket.SendAsync(new ForgedPeer().ClientHandshake());
            await ReceivePacketAsync(socket); // the ServerHandshake: the server now waits for ClientAuthentication
            if (abortive)
            {
                socket.LingerState = new LingerOption(true, 0);
            }
            else
            {
                socket.Shutdown(SocketShutdown.Both);
            }
        }

        await HostilePeerTests.WaitForAsync(() => OssuaryRecords(logs).Any(r => r.Id.Id == 3));
        FakeLogRecord failed = Assert.Single(OssuaryRecords(logs), r => r.Id.Id is 3 or 4);
        Assert.Equal(3, failed.Id.Id); // a failure, not the timeout
        Assert.Equal(LogLevel.Debug, failed.Level);

        // Kestrel cancels ConnectionClosed as soon as the socket ends, racing the handshake's read of the end.
        string? reason = failed.GetStructuredStateValue("Reason");
        Assert.Contains(reason, new[] { nameof(OssuaryErrorReason.Truncated), nameof(OssuaryErrorReason.ConnectionClosed), nameof(OssuaryErrorReason.ConnectionFailed) });
        Assert.Empty(server.Server.Log.Features); // the handler never saw it
        await AssertQuietAsync(logs);
    });

    [Fact]
    public Task ClientClosingRightAfterItsDisconnectEndsTheServerHandlersInputNormally() => Run(async () =>
    {
        var logs = new FakeLoggerProvider();
        await using var server = await AuthenticatedEchoServer.StartAsync(KestrelLoad.LogEverythingTo(logs, LogLevel.Debug));

        Exception? outcome = await VanishAfterDisconnectAsync(server, abortive: false);

        Assert.Null(outcome);
        Assert.Empty(server.Server.Log.Failures);
        await AssertQuietAsync(logs);
    });

    /// <remarks>
    /// A reset right behind the Disconnect usually reaches the handler as a reset: Kestrel reads the
    /// Disconnect, then the RST, and completes its input pipe with ConnectionResetException, which a
    /// Pipe throws ahead of bytes it still holds, so the adapter never sees them. TCP allows it (a
    /// reset may discard data); what matters is that it is a quiet, prompt failure, never a hang.
    /// </remarks>
    [Fact]
    public Task ClientResettingRightAfterItsDisconnectIsAtWorstAQuietConnectionFailure() => Run(async () =>
    {
        var logs = new FakeLoggerProvider();
        await using var server = await AuthenticatedEchoServer.StartAsync(KestrelLoad.LogEverythingTo(logs, LogLevel.Debug));

        Exception? outcome = await VanishAfterDisconnectAsync(server, abortive: true);

        if (outcome is not null)
        {
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, Assert.IsType<OssuaryException>(outcome).Reason);
            Assert.IsType<Microsoft.AspNetCore.Connections.ConnectionResetException>(outcome.InnerException);
        }

        await AssertQuietAsync(logs, connectionFailed: outcome is null ? 0 : 1);
    });

    [Theory]
    [InlineData(false, OssuaryErrorReason.Truncated)]
    [InlineData(true, OssuaryErrorReason.ConnectionFailed)] // the socket read fails with ECONNRESET
    public Task ServerVanishingMidFrameFailsTheClientsInputAfterTheBytesBefore(bool abortive, OssuaryErrorReason expected) => Run(async () =>
    {
        await using var server = await TestControlledServer.StartAsync();
        int frames = 0;
        Task<OssuaryClientConnection> connecting = OssuaryClient.ConnectAsync(server.EndPoint, server.ClientOptions);
        await using VanishingSocket socket = await server.AcceptAsync(HalfOfDataFrame(2, () => ++frames), abortive);
        await using OssuaryDuplexPipe accepted = await server.HandshakeAsync(socket);
        await using OssuaryClientConnection client = await connecting.Within();

        await accepted.Output.WriteAsync("first words"u8.ToArray());
        Assert.Equal("first words"u8.ToArray(), await PipeReads.ReadExactlyAsync(client.Transport.Input, 11).Within());
        await accepted.Output.WriteAsync("never whole"u8.ToArray());
        await socket.Vanished.Within();

        OssuaryException failure = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(client.Transport.Input).Within(Prompt));
        Assert.Equal(expected, failure.Reason);
        if (!abortive)
        {
            Assert.Contains("middle", failure.Message);
        }

        // Neither end waits for the other; `await using` disposes both again, which must be harmless.
        await client.DisposeAsync().Within(Prompt);
        await accepted.DisposeAsync().Within(Prompt);
    });

    [Theory]
    [InlineData(false, OssuaryErrorReason.Truncated)]
    [InlineData(true, OssuaryErrorReason.ConnectionFailed)]
    public Task ServerVanishingInTheMiddleOfItsServerHandshakeFailsConnect(bool abortive, OssuaryErrorReason expected) => Run(async () =>
    {
        await using var server = await TestControlledServer.StartAsync();
        Task<OssuaryClientConnection> connecting = OssuaryClient.ConnectAsync(server.EndPoint, server.ClientOptions);
        await using VanishingSocket socket = await server.AcceptAsync(async (packet, to) =>
        {
            await to.WriteAsync(packet.AsMemory(0, packet.Length / 2)); // half the ServerHandshake, then gone
            return false;
        }, abortive);
        Task<OssuaryDuplexPipe> accepting = server.HandshakeAsync(socket);

        OssuaryException failure = await Assert.ThrowsAsync<OssuaryException>(() => connecting.Within(Prompt));
        Assert.Equal(expected, failure.Reason);
        await Assert.ThrowsAnyAsync<Exception>(() => accepting.Within(Prompt)); // and the vanished side's own handshake ends too
    });

    /// <remarks>
    /// Here a reset right behind the Disconnect is clean too: the client's socket reader is pulled by
    /// the adapter, and the kernel hands over the bytes it received before it reports the reset.
    /// </remarks>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public Task ServerVanishingRightAfterItsDisconnectEndsTheClientsInputNormallyAfterItsLastBytes(bool abortive) => Run(async () =>
    {
        await using var server = await TestControlledServer.StartAsync();
        Task<OssuaryClientConnection> connecting = OssuaryClient.ConnectAsync(server.EndPoint, server.ClientOptions);
        await using VanishingSocket socket = await server.AcceptAsync(AfterDisconnect, abortive);
        await using OssuaryDuplexPipe accepted = await server.HandshakeAsync(socket);
        await using OssuaryClientConnection client = await connecting.Within();

        await accepted.Output.WriteAsync("last words"u8.ToArray());
        await accepted.Output.CompleteAsync();
        await socket.Vanished.Within();

        Assert.Equal("last words"u8.ToArray(), await PipeReads.ReadToEndAsync(client.Transport.Input).Within(Prompt));
        await client.Transport.Output.WriteAsync("too late"u8.ToArray()).Within(Prompt); // goes nowhere, and does not throw
        await client.DisposeAsync().Within(Prompt); // without waiting for a peer that is gone
    });

    /// <summary>A client sends a round, then its Disconnect, and its socket goes with it; returns how the Kestrel handler's connection ended.</summary>
    private static async Task<Exception?> VanishAfterDisconnectAsync(AuthenticatedEchoServer server, bool abortive)
    {
        await using var socket = new VanishingSocket(await RawPeer.ConnectAsync(server.Server.EndPoint), AfterDisconnect, abortive);
        await using OssuaryDuplexPipe client = await OssuaryDuplexPipe.ConnectAsync(socket.Transport, server.ClientOptions).Within();
        await client.Output.WriteAsync("ping"u8.ToArray());
        Assert.Equal("ping"u8.ToArray(), await PipeReads.ReadExactlyAsync(client.Input, 4).Within());

        await client.Output.CompleteAsync();
        await socket.Vanished.Within();

        return await server.Server.Log.NextOutcomeAsync().Within(Prompt);
    }

    /// <summary>Passes packets through until the <paramref name="nth"/> data frame, sends half of it, and vanishes.</summary>
    private static PacketRelay.PacketHandler HalfOfDataFrame(int nth, Func<int> countDataFrame) => async (packet, to) =>
    {
        if (PacketRelay.IsData(packet) && countDataFrame() == nth)
        {
            await to.WriteAsync(packet.AsMemory(0, packet.Length / 2));
            return false;
        }

        await to.WriteAsync(packet);
        return true;
    };

    /// <summary>Passes everything through, and vanishes as soon as the Disconnect has been sent.</summary>
    private static async ValueTask<bool> AfterDisconnect(byte[] packet, PipeWriter to)
    {
        await to.WriteAsync(packet);
        return PacketRelay.TypeOf(packet) != PacketRelay.Disconnect;
    }

    private static async Task ReceivePacketAsync(Socket socket)
    {
        byte[] header = new byte[Wire.HeaderSize];
        await ReceiveExactlyAsync(socket, header);
        await ReceiveExactlyAsync(socket, new byte[BinaryPrimitives.ReadUInt16BigEndian(header)]);
    }

    private static async Task ReceiveExactlyAsync(Socket socket, byte[] buffer)
    {
        for (int received = 0; received < buffer.Length;)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(received)).AsTask().Within();
            Assert.True(n > 0, "the server closed before its ServerHandshake");
            received += n;
        }
    }

    private static IEnumerable<FakeLogRecord> OssuaryRecords(FakeLoggerProvider logs) =>
        logs.Collector.GetSnapshot().Where(r => (r.Category ?? "").StartsWith("Ossuary", StringComparison.Ordinal));

    /// <summary>The server said nothing above Debug, from any category (Kestrel's included).</summary>
    private static async Task AssertQuietAsync(FakeLoggerProvider logs, int connectionFailed = 0)
    {
        if (connectionFailed > 0)
        {
            await HostilePeerTests.WaitForAsync(() => OssuaryRecords(logs).Count(r => r.Id.Id == 5) >= connectionFailed);
        }

        // Anything the server would still log about the vanished peer comes before Kestrel's line for
        // the connection's stop (its middleware and handler have returned by then): wait for that
        // line for every connection it started, not for a guess at how long logging takes.
        await HostilePeerTests.WaitForAsync(() => KestrelConnections(logs) is ( > 0 and var started, var stopped) && stopped == started);
        Assert.Equal(connectionFailed, OssuaryRecords(logs).Count(r => r.Id.Id == 5));
        Assert.DoesNotContain(logs.Collector.GetSnapshot(), r => r.Level >= LogLevel.Warning && !KestrelHeartbeat.RanLate(r));
        Assert.DoesNotContain(OssuaryRecords(logs), r => r.Level > LogLevel.Debug);
    }

    /// <summary>How many connections Kestrel has logged as started and as stopped (its Debug lines).</summary>
    private static (int Started, int Stopped) KestrelConnections(FakeLoggerProvider logs)
    {
        FakeLogRecord[] kestrel = [.. logs.Collector.GetSnapshot().Where(r => r.Category == "Microsoft.AspNetCore.Server.Kestrel.Connections")];
        return (kestrel.Count(r => r.Id.Name == "ConnectionStart"), kestrel.Count(r => r.Id.Name == "ConnectionStop"));
    }

    private static Task Run(Func<Task> test) => test().Within();

    private static void Patient(OssuaryServerOptions options)
    {
        options.HandshakeStepTimeout = StepWait;
        options.HandshakeTimeout = HandshakeBound;
    }

    private static void Patient(OssuaryClientOptions options)
    {
        options.HandshakeStepTimeout = StepWait;
        options.HandshakeTimeout = HandshakeBound;
    }

    /// <summary>A server the test drives by hand: a TcpListener whose one connection goes through a <see cref="VanishingSocket"/>.</summary>
    private sealed class TestControlledServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly OssuaryIdentity _serverKey = OssuaryIdentity.Generate();
        private readonly OssuaryIdentity _clientKey = OssuaryIdentity.Generate();

        private TestControlledServer()
        {
            _listener.Start();
            ClientOptions = new OssuaryClientOptions { Identity = _clientKey };
            ClientOptions.TrustedServerKeys.Add(_serverKey.PublicKey);
            Patient(ClientOptions);
        }

        public EndPoint EndPoint => _listener.LocalEndpoint;

        public OssuaryClientOptions ClientOptions { get; }

        public static Task<TestControlledServer> StartAsync() => Task.FromResult(new TestControlledServer());

        public async Task<VanishingSocket> AcceptAsync(PacketRelay.PacketHandler onPacket, bool abortive) =>
            new(await _listener.AcceptSocketAsync().Within(), onPacket, abortive);

        public Task<OssuaryDuplexPipe> HandshakeAsync(VanishingSocket socket)
        {
            var options = new OssuaryServerOptions { Identity = _serverKey };
            options.AuthorizedClientKeys.Add(_clientKey.PublicKey);
            Patient(options);
            return OssuaryDuplexPipe.AcceptAsync(socket.Transport, options).Within();
        }

        public ValueTask DisposeAsync()
        {
            _listener.Stop();
            _serverKey.Dispose();
            _clientKey.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
