using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A server that ends the connection before it has sent a byte of its handshake: a <c>UseOssuary</c> server at its
/// <c>MaxPendingHandshakes</c>, which closes a connection unheard, or something that is not an Ossuary server. The wire
/// carries no reason, so the client said only "the peer closed the connection during the handshake" (or the socket's
/// reset): the client's message now says the server never answered and what that may mean. A server that had begun
/// its answer is still reported as before.
/// </summary>
public class ClosedBeforeTheFirstPacketTests
{
    private const string Hint = "before its first handshake packet";

    // Far beyond the test: the stalled peer's connection ends because the test closes it, not by a timeout.
    private static readonly TimeSpan Patient = TimeSpan.FromMinutes(10);

    [Fact]
    public async Task AnOssuaryClientRefusedByTheBoundIsToldTheServerMayBeAtItsLimit()
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        await using OssuaryTestServer server = await StartBoundedServerAsync(keys, logs);
        using var rejected = new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), OssuaryTelemetry.MeterName, "ossuary.rejected_connections");

        using (await StallAsync(server, logs))
        {
            OssuaryException refused = await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()).Within());
            AssertHinted(refused);
            Assert.Equal(1, rejected.GetMeasurementSnapshot().Sum(m => m.Value));
        }

        await EchoOnceTheSlotIsFreeAsync(server, keys);
    }

    [Fact]
    public async Task AnOssuaryStreamRefusedByTheBoundIsToldTheServerMayBeAtItsLimit()
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        await using OssuaryTestServer server = await StartBoundedServerAsync(keys, logs);
        using var rejected = new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), OssuaryTelemetry.MeterName, "ossuary.rejected_connections");

        using (await StallAsync(server, logs))
        {
            using Socket socket = await RawPeer.ConnectAsync(server.EndPoint);
            await using var stream = new OssuaryStream(new NetworkStream(socket, ownsSocket: false));
            OssuaryException refused = await Assert.ThrowsAsync<OssuaryException>(() => stream.AuthenticateAsClientAsync(keys.ClientOptions()).Within());
            AssertHinted(refused);
            Assert.Equal(1, rejected.GetMeasurementSnapshot().Sum(m => m.Value));
        }

        await EchoOnceTheSlotIsFreeAsync(server, keys);
    }

    /// <summary>A server that reads the client's ClientHandshake and closes: the client reads the connection's end (EOF).</summary>
    [Fact]
    public Task AServerThatClosesWithoutAWordIsNamedAsPossiblyNotAnOssuaryServer() => AgainstAsync(async socket =>
    {
        await ReadClientHandshakeAsync(socket);
        socket.Shutdown(SocketShutdown.Send);
        await RawPeer.WaitForCloseAsync(socket, TestTimeout.Default);
    }, AssertHinted);

    /// <summary>A server that closes with the ClientHandshake unread: its socket resets the connection.</summary>
    [Fact]
    public Task AServerThatResetsWithoutAWordIsNamedAsPossiblyNotAnOssuaryServer() => AgainstAsync(async socket =>
    {
        // Until the ClientHandshake is in the socket, unread: closing then resets instead of ending cleanly.
        await socket.ReceiveAsync(new byte[1], SocketFlags.Peek).Within();
        socket.Close();
    }, refused =>
    {
        AssertHinted(refused);
        Assert.Contains("reset", refused.Message, StringComparison.OrdinalIgnoreCase);
    });

    /// <summary>A server that had begun its answer was heard: its end is a cut handshake, not a silent server.</summary>
    [Fact]
    public Task AServerThatClosesAfterPartOfItsAnswerIsNotCalledSilent() => AgainstAsync(async socket =>
    {
        await ReadClientHandshakeAsync(socket);
        await socket.SendAsync(new byte[] { 1, 0, 0 }, SocketFlags.None).Within();
        socket.Shutdown(SocketShutdown.Send);
        await RawPeer.WaitForCloseAsync(socket, TestTimeout.Default);
    }, refused =>
    {
        Assert.Equal(OssuaryErrorReason.Truncated, refused.Reason);
        Assert.DoesNotContain(Hint, refused.Message, StringComparison.Ordinal);
        Assert.Contains("closed the connection during the Ossuary handshake", refused.Message, StringComparison.Ordinal);
    });

    private static void AssertHinted(OssuaryException refused)
    {
        Assert.True(refused.Reason is OssuaryErrorReason.Truncated or OssuaryErrorReason.ConnectionFailed, $"reason {refused.Reason}: {refused.Message}");
        Assert.Contains(Hint, refused.Message, StringComparison.Ordinal);
        Assert.Contains("limit of handshakes in progress", refused.Message, StringComparison.Ordinal);
        Assert.Contains("not an Ossuary server", refused.Message, StringComparison.Ordinal);
    }

    private static Task<OssuaryTestServer> StartBoundedServerAsync(MutualKeys keys, FakeLoggerProvider logs) =>
        OssuaryTestServer.StartEchoAsync(
            o =>
            {
                keys.ConfigureServer(o, Patient);
                o.HandshakeStepTimeout = Patient;
                o.MaxPendingHandshakes = 1;
            },
            KestrelLoad.LogEverythingTo(logs, LogLevel.Debug));

    /// <summary>A peer that connects and says nothing, holding the server's one place once its handshake has started.</summary>
    private static async Task<Socket> StallAsync(OssuaryTestServer server, FakeLoggerProvider logs)
    {
        Socket stalled = await RawPeer.ConnectAsync(server.EndPoint);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 1 && (r.Category ?? "").StartsWith("Ossuary", StringComparison.Ordinal)));
        return stalled;
    }

    /// <summary>Once the stalled peer has gone its place comes back (when Kestrel has ended its connection): an honest client is served.</summary>
    private static async Task EchoOnceTheSlotIsFreeAsync(OssuaryTestServer server, MutualKeys keys)
    {
        using var deadline = new CancellationTokenSource(TestTimeout.Default);
        while (true)
        {
            try
            {
                await HonestClient.EchoAsync(server.EndPoint, keys.ClientOptions(), 1024, seed: 3);
                return;
            }
            catch (OssuaryException ex) when (ex.Message.Contains(Hint, StringComparison.Ordinal) && !deadline.IsCancellationRequested)
            {
                await Task.Delay(10, deadline.Token);
            }
        }
    }

    /// <summary>Connects an <see cref="OssuaryClient"/> to a plain TCP server that does <paramref name="serve"/> with its one connection.</summary>
    private static async Task AgainstAsync(Func<Socket, Task> serve, Action<OssuaryException> check)
    {
        using var keys = new MutualKeys();
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        Task serving = Task.Run(async () =>
        {
            using Socket accepted = await listener.AcceptAsync();
            await serve(accepted);
        });

        OssuaryException refused = await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(listener.LocalEndPoint!, keys.ClientOptions()).Within());
        await serving.Within();
        check(refused);
    }

    /// <summary>Reads the client's whole first packet, so that closing afterwards ends the connection cleanly rather than resetting it.</summary>
    private static async Task ReadClientHandshakeAsync(Socket socket)
    {
        byte[] header = new byte[PacketHeader.Size];
        await ReceiveExactlyAsync(socket, header);
        await ReceiveExactlyAsync(socket, new byte[PacketHeader.Read(header).BodyLength]);
    }

    private static async Task ReceiveExactlyAsync(Socket socket, byte[] buffer)
    {
        for (int read = 0; read < buffer.Length;)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None).AsTask().Within();
            Assert.True(n > 0, "the client closed before its ClientHandshake was read");
            read += n;
        }
    }
}
