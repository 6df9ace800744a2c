using System.Diagnostics.Metrics;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;

namespace Ossuary.Pipelines.Tests.Hardening;

/// <summary>
/// Peers that connect and never finish their handshake, more of them than <c>MaxPendingHandshakes</c>, against a
/// real Kestrel: those within the bound wait for their handshake, those beyond it are closed at once, unheard and
/// without a handshake begun, counted, and logged once; the slots come back when the waiting peers go.
/// </summary>
[Collection(HardeningCollection.Name)]
public class PendingHandshakeBoundTests
{
    private const int Bound = 16;
    private const int Beyond = 48;

    // Far beyond the test: a connection closed during it was closed by the bound, not by a timeout.
    private static readonly TimeSpan Patient = TimeSpan.FromMinutes(10);

    [Fact]
    public Task ConnectionsBeyondMaxPendingHandshakesAreClosedUnheardCountedAndLoggedOnce() => Within(TimeSpan.FromSeconds(120), async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        await using var server = await OssuaryTestServer.StartEchoAsync(
            o =>
            {
                keys.ConfigureServer(o, Patient);
                o.HandshakeStepTimeout = Patient;
                o.MaxPendingHandshakes = Bound;
            },
            services =>
            {
                KestrelLoad.LogEverythingTo(logs, LogLevel.Debug)(services);
                KestrelLoad.AcceptMany(services);
            });
        using var rejected = new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), OssuaryTelemetry.MeterName, "ossuary.rejected_connections");

        // The bound's worth of peers that say nothing: each is in its handshake once the server has said it started.
        List<Socket> waiting = [];
        try
        {
            for (int i = 0; i < Bound; i++)
            {
                waiting.Add(await RawPeer.ConnectAsync(server.EndPoint));
            }

            await HostilePeerTests.WaitForAsync(() => OssuaryRecords(logs).Count(r => r.Id.Id == 1) == Bound);

            // Every peer beyond the bound is closed without a byte; before, each waited for its handshake's timeout.
            PeerClose[] beyond = await Task.WhenAll(Enumerable.Range(0, Beyond).Select(async _ =>
            {
                using Socket socket = await RawPeer.ConnectAsync(server.EndPoint);
                return await RawPeer.WaitForCloseAsync(socket, TimeSpan.FromSeconds(60));
            }));
            Assert.All(beyond, close =>
            {
                Assert.True(close.Closed, "a connection beyond MaxPendingHandshakes was still open");
                Assert.Equal(0, close.BytesReceived);
            });

            // Counted each, and not one of them began a handshake (no session, no timer) or was logged more than once.
            await rejected.WaitForMeasurementsAsync(Beyond).Within();
            Assert.Equal(Beyond, rejected.GetMeasurementSnapshot().Sum(m => m.Value));
            Assert.Equal(Bound, OssuaryRecords(logs).Count(r => r.Id.Id == 1));
            FakeLogRecord said = Assert.Single(OssuaryRecords(logs), r => r.Id.Id == 12);
            Assert.Equal(LogLevel.Debug, said.Level);
            Assert.Contains($"{Bound} handshakes were already under way", said.Message);

            // The peers within the bound are still waiting for their handshake: nothing, not even their close, has come.
            Assert.All(waiting, socket => Assert.False(socket.Poll(0, SelectMode.SelectRead), "a peer within the bound was closed"));
        }
        finally
        {
            waiting.ForEach(socket => socket.Dispose());
        }

        // Once they have gone (Kestrel has stopped every connection, so the middleware has returned for each),
        // their slots are free: an honest client is served.
        await HostilePeerTests.WaitForAsync(() => KestrelConnections(logs) is (Bound + Beyond, Bound + Beyond));
        await HonestClient.EchoAsync(server.EndPoint, keys.ClientOptions(), 1024, seed: 1);
        Assert.Equal(Beyond, rejected.GetMeasurementSnapshot().Sum(m => m.Value));
        Assert.DoesNotContain(logs.Collector.GetSnapshot(), r => r.Level >= LogLevel.Warning && !KestrelHeartbeat.RanLate(r));
        Assert.DoesNotContain(OssuaryRecords(logs), r => r.Level > LogLevel.Debug);
    });

    private static IEnumerable<FakeLogRecord> OssuaryRecords(FakeLoggerProvider logs) =>
        logs.Collector.GetSnapshot().Where(r => (r.Category ?? "").StartsWith("Ossuary", StringComparison.Ordinal));

    /// <summary>How many connections Kestrel has logged as started and as stopped (its Debug lines).</summary>
    private static (int Started, int Stopped) KestrelConnections(FakeLoggerProvider logs)
    {
        FakeLogRecord[] kestrel = [.. logs.Collector.GetSnapshot().Where(r => r.Category == "Microsoft.AspNetCore.Server.Kestrel.Connections")];
        return (kestrel.Count(r => r.Id.Name == "ConnectionStart"), kestrel.Count(r => r.Id.Name == "ConnectionStop"));
    }

    private static Task Within(TimeSpan limit, Func<Task> test) => test().Within(limit);
}
