using System.Diagnostics.Metrics;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>Peers that are not Ossuary clients at all, against UseOssuary in Kestrel: quiet failures, counted, at Debug.</summary>
public class HostilePeerTests
{
    [Fact]
    public Task SilentClientIsClosedAtTheHandshakeTimeoutAndLoggedAsDebug() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        await using OssuaryTestServer server = await StartLoggedEchoAsync(keys, logs, TimeSpan.FromSeconds(1));
        var meters = server.Services.GetRequiredService<IMeterFactory>();
        using var durations = new MetricCollector<double>(meters, "Ossuary.Pipelines", "ossuary.handshake.duration");
        using var active = new MetricCollector<long>(meters, "Ossuary.Pipelines", "ossuary.active_handshakes");

        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.EndPoint);
        int read = await ReceiveUntilClosedAsync(socket);

        Assert.Equal(0, read); // nothing, then EOF: the server had nothing to say to a silent peer
        await durations.WaitForMeasurementsAsync(1).Within();
        CollectedMeasurement<double> duration = Assert.Single(durations.GetMeasurementSnapshot());
        Assert.Equal("failure", duration.Tags["ossuary.outcome"]);
        Assert.Equal(nameof(OssuaryErrorReason.HandshakeTimeout), duration.Tags["error.type"]);
        Assert.Equal("server", duration.Tags["ossuary.role"]);
        Assert.InRange(duration.Value, 0.9, 30);
        Assert.Equal(0, active.GetMeasurementSnapshot().Sum(m => m.Value));
        Assert.Contains(active.GetMeasurementSnapshot(), m => m.Value == 1);

        await WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 4)); // logged just after it is counted
        FakeLogRecord timedOut = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == 4);
        Assert.Equal(LogLevel.Debug, timedOut.Level);
        Assert.Equal("HandshakeTimedOut", timedOut.Id.Name);
        Assert.DoesNotContain(logs.Collector.GetSnapshot(), r => (r.Category ?? "").StartsWith("Ossuary", StringComparison.Ordinal) && r.Level > LogLevel.Debug);
        AssertNoSecretIn(logs, keys.Server, keys.Client);
        Assert.Empty(server.Log.Features);
    });

    [Fact]
    public Task ClientSendingGarbageIsDisconnectedAndLoggedAsADebugFailure() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        await using OssuaryTestServer server = await StartLoggedEchoAsync(keys, logs, TimeSpan.FromSeconds(1));

        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.EndPoint);
        byte[] garbage = new byte[64 * 1024];
        new Random(20260101).NextBytes(garbage);
        try
        {
            await socket.SendAsync(garbage.AsMemory()).AsTask().Within();
        }
        catch (SocketException)
        {
            // The server may close while the garbage is still arriving.
        }

        await ReceiveUntilClosedAsync(socket);

        // Whether the random header announced an oversized packet (refused at once) or a packet whose
        // id or type is wrong (a reset the garbage never answers), the handshake fails quietly.
        await WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id is 3 or 4));
        FakeLogRecord failed = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id is 3 or 4);
        Assert.Equal(LogLevel.Debug, failed.Level);
        Assert.DoesNotContain(logs.Collector.GetSnapshot(), r => (r.Category ?? "").StartsWith("Ossuary", StringComparison.Ordinal) && r.Level > LogLevel.Debug);
        AssertNoSecretIn(logs, keys.Server, keys.Client);
        Assert.Empty(server.Log.Features);
    });

    [Fact]
    public Task OversizedHeaderIsRefusedFromItsEightBytesAlone() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        await using OssuaryTestServer server = await StartLoggedEchoAsync(keys, logs, OssuaryServerOptions.DefaultHandshakeTimeout);
        using var durations = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Ossuary.Pipelines", "ossuary.handshake.duration");

        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.EndPoint);
        await socket.SendAsync(new byte[] { 0x40, 0x1D, 0, 0, 0, 0x01, 0, 0 }); // len 16,413: one byte over the limit
        byte[] answer = await ReceiveAllAsync(socket);

        // The server's farewell, before the handshake bound of 10 s: Disconnect (0x10) with the error flag.
        Assert.Equal(new byte[] { 0, 4, 0, 0, 0, 0x10, 0, 0, 4, 0, 1, 0 }, answer);
        await durations.WaitForMeasurementsAsync(1).Within();
        Assert.Equal(nameof(OssuaryErrorReason.OversizedPacket), Assert.Single(durations.GetMeasurementSnapshot()).Tags["error.type"]);
        await WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 3));
        FakeLogRecord failed = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == 3);
        Assert.Equal(LogLevel.Debug, failed.Level);
        Assert.Contains(nameof(OssuaryErrorReason.OversizedPacket), failed.Message);
    });

    [Fact]
    public Task ClientThatHangsUpMidHandshakeIsCountedAsAFailure() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(serverKey, clientKey);
        using var durations = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Ossuary.Pipelines", "ossuary.handshake.duration");

        using (var socket = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(server.EndPoint);
            await socket.SendAsync(new byte[] { 0, 84, 0, 0, 0, 1, 0, 0, 84, 0, 1 }); // a ClientHandshake header and 3 bytes of body
            socket.Shutdown(SocketShutdown.Send);
            await ReceiveAllAsync(socket);
        }

        await durations.WaitForMeasurementsAsync(1).Within();
        // Kestrel cancels ConnectionClosed as soon as its receive side ends, racing the handshake's
        // read of the end: either way the peer went away mid-handshake.
        string? reason = Assert.Single(durations.GetMeasurementSnapshot()).Tags["error.type"] as string;
        Assert.True(reason is nameof(OssuaryErrorReason.Truncated) or nameof(OssuaryErrorReason.ConnectionClosed), reason);
    });

    [Fact]
    public Task AFloodOfResetsEndsAtTheFifthResetLikeAnyOther() => Run(async () =>
    {
        // Each Reset the server answers costs it a fresh X25519 key pair and a send: a peer that
        // streams 12-byte Resets must not buy that without limit within one connection (a
        // connection limit bounds nothing then), whatever the handshake timeout.
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        await using OssuaryTestServer server = await StartLoggedEchoAsync(keys, logs, TimeSpan.FromMinutes(5));
        using var durations = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Ossuary.Pipelines", "ossuary.handshake.duration");

        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.EndPoint);
        byte[] reset = Wire.Control(Wire.Reset, error: true);
        byte[] flood = [.. Enumerable.Repeat(reset, 1000).SelectMany(packet => packet)];
        await RawPeer.TrySendAsync(socket, flood);

        // Every packet the server sends here is a 12-byte Reset or Disconnect.
        var answers = new List<ushort>();
        byte[] packet = new byte[reset.Length];
        while (await ReceiveExactlyAsync(socket, packet))
        {
            answers.Add(Wire.Type(packet));
            if (Wire.Type(packet) == Wire.Disconnect)
            {
                Assert.Equal(1, Wire.ErrorFlag(packet));
                break;
            }

            Assert.True(answers.Count < 5, $"the server answered {answers.Count} Resets and goes on answering");
        }

        Assert.Equal([Wire.Reset, Wire.Reset, Wire.Reset, Wire.Reset, Wire.Disconnect], answers);
        Assert.Equal(0, await ReceiveUntilClosedAsync(socket));
        await durations.WaitForMeasurementsAsync(1).Within();
        Assert.Equal(nameof(OssuaryErrorReason.ConnectionReset), Assert.Single(durations.GetMeasurementSnapshot()).Tags["error.type"]);
        await WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 3));
        Assert.DoesNotContain(logs.Collector.GetSnapshot(), r => (r.Category ?? "").StartsWith("Ossuary", StringComparison.Ordinal) && r.Level > LogLevel.Debug);
        Assert.Empty(server.Log.Features);
    });

    /// <summary>Fills <paramref name="buffer"/> from the socket; false at EOF (or a reset) before it is full.</summary>
    private static async Task<bool> ReceiveExactlyAsync(Socket socket, byte[] buffer)
    {
        int filled = 0;
        try
        {
            while (filled < buffer.Length)
            {
                int n = await socket.ReceiveAsync(buffer.AsMemory(filled)).AsTask().Within();
                if (n == 0)
                {
                    return false;
                }

                filled += n;
            }
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
        {
            return false;
        }

        return true;
    }

    /// <summary>Reads until EOF (or a reset, which also ends the connection) and returns the byte count.</summary>
    private static async Task<int> ReceiveUntilClosedAsync(Socket socket) => (await ReceiveAllAsync(socket)).Length;

    private static async Task<byte[]> ReceiveAllAsync(Socket socket)
    {
        var all = new List<byte>();
        byte[] buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer.AsMemory()).AsTask().Within() is int n and > 0)
            {
                all.AddRange(buffer.AsSpan(0, n));
            }
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
        {
        }

        return [.. all];
    }

    internal static void AssertNoSecretIn(FakeLoggerProvider logs, params OssuaryIdentity[] identities)
    {
        foreach (OssuaryIdentity identity in identities)
        {
            char[] hex = new char[64];
            Assert.True(identity.TryFormatSeedHex(hex, out _));
            string seed = new(hex);
            foreach (FakeLogRecord record in logs.Collector.GetSnapshot())
            {
                Assert.DoesNotContain(seed, record.Message, StringComparison.OrdinalIgnoreCase);
                Assert.DoesNotContain(seed, record.Exception?.ToString() ?? "", StringComparison.OrdinalIgnoreCase);
                foreach (KeyValuePair<string, string?> pair in record.StructuredState ?? [])
                {
                    Assert.DoesNotContain(seed, pair.Value ?? "", StringComparison.OrdinalIgnoreCase);
                }
            }
        }
    }

    internal static async Task WaitForAsync(Func<bool> condition)
    {
        using var limit = new CancellationTokenSource(TestTimeout.Default);
        while (!condition())
        {
            await Task.Delay(10, limit.Token);
        }
    }

    /// <summary>An echo server admitting <paramref name="keys"/>'s client, its logs (Ossuary's at Debug) in <paramref name="logs"/>.</summary>
    private static Task<OssuaryTestServer> StartLoggedEchoAsync(MutualKeys keys, FakeLoggerProvider logs, TimeSpan handshakeTimeout) =>
        OssuaryTestServer.StartEchoAsync(o => keys.ConfigureServer(o, handshakeTimeout), OssuaryTestServer.LogTo(logs));

    private static Task Run(Func<Task> test) => test().Within();
}
