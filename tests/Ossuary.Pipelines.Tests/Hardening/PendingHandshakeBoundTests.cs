using System.Diagnostics.Metrics;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;

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
            Assert.Equal(LogLevel.Warning, said.Level);
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
        Assert.DoesNotContain(logs.Collector.GetSnapshot(), r => r.Level >= LogLevel.Warning && r.Id.Id != 12 && !KestrelHeartbeat.RanLate(r));
        Assert.DoesNotContain(OssuaryRecords(logs), r => r.Level > LogLevel.Debug && r.Id.Id != 12);
    });

    /// <summary>
    /// An <c>IdentitySelector</c> stuck on a key vault that never answers is given up on at the handshake's timeout,
    /// but its thread stays blocked until it returns: its connection's place stays taken until then. Given back at
    /// the timeout, each new connection of a flood called the selector again and blocked one more thread of the pool
    /// for as long as the vault hung, without bound.
    /// </summary>
    [Fact]
    public Task AnIdentitySelectorGivenUpOnHoldsItsPlaceUntilItReturns() => Within(TimeSpan.FromSeconds(120), async () =>
    {
        const int bound = 2;
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        var time = new FakeTimeProvider();
        using var vault = new HungVault(keys.Server);
        await using var server = await OssuaryTestServer.StartEchoAsync(
            o =>
            {
                o.AuthorizedClientKeys.Add(keys.Client.PublicKey);
                o.TimeProvider = time;
                o.IdentitySelector = vault.Select;
                o.MaxPendingHandshakes = bound;
            },
            KestrelLoad.LogEverythingTo(logs, LogLevel.Debug));
        using var rejected = new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), OssuaryTelemetry.MeterName, "ossuary.rejected_connections");
        OssuaryClientOptions client = keys.ClientOptions();
        client.HandshakeTimeout = Patient;
        client.HandshakeStepTimeout = Patient;

        // The bound's worth of clients, each waiting on the hung selector, given up on at the handshake's timeout.
        Task<OssuaryClientConnection>[] given = [.. Enumerable.Range(0, bound).Select(_ => OssuaryClient.ConnectAsync(server.EndPoint, client))];
        for (int i = 0; i < bound; i++)
        {
            await vault.Entered.WaitAsync().Within();
        }

        time.Advance(OssuaryServerOptions.DefaultHandshakeTimeout);
        foreach (Task<OssuaryClientConnection> connect in given)
        {
            OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => connect.Within());
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
        }

        await HostilePeerTests.WaitForAsync(() => KestrelConnections(logs) is (bound, bound)); // the middleware has returned for both

        // Both selectors still hang: the next connection is closed unheard, and the selector not called again.
        using (Socket next = await RawPeer.ConnectAsync(server.EndPoint))
        {
            PeerClose close = await RawPeer.WaitForCloseAsync(next, TimeSpan.FromSeconds(30));
            Assert.True(close.Closed, $"a connection was let in while {bound} selectors given up on still ran");
            Assert.Equal(0, close.BytesReceived);
        }

        Assert.Equal(bound, vault.Calls);
        Assert.Equal(1, rejected.GetMeasurementSnapshot().Sum(m => m.Value));

        // Once the vault answers, their places are given back: a client is served (the first try may still find them taken).
        vault.Release();
        using var deadline = new CancellationTokenSource(TestTimeout.Default);
        while (true)
        {
            try
            {
                await HonestClient.EchoAsync(server.EndPoint, client, 1024, seed: 2);
                break;
            }
            catch (Exception ex) when (ex is OssuaryException or IOException or SocketException && !deadline.IsCancellationRequested)
            {
                await Task.Delay(10, deadline.Token);
            }
        }

        Assert.Equal(bound + 1, vault.Calls);
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

    /// <summary>An IdentitySelector waiting on a key vault that does not answer until the test releases it.</summary>
    private sealed class HungVault(OssuaryIdentity identity) : IDisposable
    {
        private readonly ManualResetEventSlim _answer = new();
        private int _calls;

        /// <summary>Released once for each call of <see cref="Select"/> that has begun.</summary>
        public SemaphoreSlim Entered { get; } = new(0);

        public int Calls => Volatile.Read(ref _calls);

        public OssuaryIdentity? Select(Microsoft.AspNetCore.Connections.ConnectionContext? connection)
        {
            Interlocked.Increment(ref _calls);
            Entered.Release();
            _answer.Wait();
            return identity;
        }

        public void Release() => _answer.Set();

        // Released, not disposed: a selector thread given up on may still be waking from its wait.
        public void Dispose() => _answer.Set();
    }
}
