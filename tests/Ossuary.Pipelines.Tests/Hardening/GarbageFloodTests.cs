using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;
using Xunit.Abstractions;

namespace Ossuary.Pipelines.Tests.Hardening;

/// <summary>
/// Hundreds of connections that send random bytes instead of a handshake: each is one quiet
/// Debug line, nothing louder from any category, and the server keeps serving honest clients.
/// </summary>
[Collection(HardeningCollection.Name)]
public class GarbageFloodTests(ITestOutputHelper output)
{
    private const int GarbageConnections = 500;
    private const int GarbageInFlight = 50;
    private const int MaxGarbageLength = 8 * 1024;

    // A garbage header that announces a plausible length waits for a body that never comes; this
    // bounds that wait. Every honest handshake must beat it too, so it is generous for a loaded
    // machine (a 10 ms delay was seen to take ~0.9 s on a shared 2-core machine, flood or not).
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(5);

    [Fact]
    public Task GarbageConnectionsEachEndWithOneDebugLineWhileHonestClientsAreServed() => Within(TimeSpan.FromSeconds(60), async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        await using var server = await OssuaryTestServer.StartEchoAsync(
            o => keys.ConfigureServer(o, HandshakeTimeout),
            services =>
            {
                KestrelLoad.LogEverythingTo(logs, LogLevel.Debug)(services);
                KestrelLoad.AcceptMany(services);
            });
        OssuaryClientOptions clientOptions = keys.ClientOptions();

        await HonestClient.EchoAsync(server.EndPoint, clientOptions, 1024, seed: -1); // warm-up: JIT, pools

        await using RuntimeSampler sampler = RuntimeSampler.Start();
        long started = Stopwatch.GetTimestamp();
        using var slots = new SemaphoreSlim(GarbageInFlight);
        var open = new GarbageCounter(GarbageInFlight);
        Task<PeerClose?>[] garbage = [.. Enumerable.Range(0, GarbageConnections).Select(i => SendGarbageAsync(server.EndPoint, i, slots, open))];
        Task<PeerClose?[]> flood = Task.WhenAll(garbage);

        // Honest clients, one after another, from the moment a full window of garbage is in until
        // the flood is over; each notes how many garbage connections were open as it was served.
        await Task.WhenAny(open.WindowConnected, flood).Unwrap().Within();
        var honest = new List<TimeSpan>();
        var openWhileServed = new List<int>();
        while (!flood.IsCompleted || honest.Count < 3)
        {
            honest.Add(await HonestClient.EchoAsync(server.EndPoint, clientOptions, 1024, seed: honest.Count));
            openWhileServed.Add(open.Open);
            await Task.WhenAny(flood, Task.Delay(50));
        }

        PeerClose?[] closes = await flood.Within();
        TimeSpan floodTook = Stopwatch.GetElapsedTime(started);
        RuntimePeaks peaks = await sampler.StopAsync();

        // Every garbage connection (and every honest one) ends its handshake with exactly one line.
        int honestRounds = honest.Count + 1; // and the warm-up
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Count(r => IsOssuary(r) && r.Id.Id is 3 or 4) >= GarbageConnections);
        IReadOnlyList<FakeLogRecord> records = logs.Collector.GetSnapshot();
        FakeLogRecord[] ossuary = [.. records.Where(IsOssuary)];
        FakeLogRecord[] failures = [.. ossuary.Where(r => r.Id.Id is 3 or 4)];
        var reasons = failures
            .GroupBy(r => r.Id.Id == 4 ? nameof(OssuaryErrorReason.HandshakeTimeout) : r.GetStructuredStateValue("Reason") ?? "?")
            .ToDictionary(g => g.Key, g => g.Count());
        PeerClose[] waited = [.. closes.OfType<PeerClose>()];

        output.WriteLine($"{GarbageConnections} garbage connections, {GarbageInFlight} at a time, up to {MaxGarbageLength} random bytes each: done in {floodTook.TotalSeconds:0.00} s");
        output.WriteLine($"server-side endings: {string.Join(", ", reasons.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}"))}");
        output.WriteLine($"peers that waited for the server: {waited.Length}, closed by reset {waited.Count(c => c.Reset)}, by EOF {waited.Count(c => !c.Reset)}");
        output.WriteLine($"honest rounds during the flood: {honest.Count}, slowest {honest.Max().TotalMilliseconds:0} ms, median {honest.Order().ElementAt(honest.Count / 2).TotalMilliseconds:0} ms; garbage connections open as each ended: most {openWhileServed.Max()}");
        output.WriteLine($"log records: {records.Count} ({string.Join(", ", records.GroupBy(r => r.Level).OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}"))})");
        output.WriteLine(peaks.ToString());

        Assert.All(waited, c => Assert.True(c.Closed, "a garbage connection was still open after the handshake timeout and a margin"));
        Assert.Equal(GarbageConnections, failures.Length);
        Assert.All(failures, r => Assert.Equal(LogLevel.Debug, r.Level));
        Assert.Equal(GarbageConnections, failures.Select(r => r.GetStructuredStateValue("ConnectionId")).Distinct().Count());
        Assert.Equal(honestRounds, ossuary.Count(r => r.Id.Id == 2));
        Assert.Equal(GarbageConnections + honestRounds, ossuary.Count(r => r.Id.Id == 1));
        Assert.DoesNotContain(ossuary, r => r.Level > LogLevel.Debug);
        Assert.DoesNotContain(records, r => r.Level >= LogLevel.Warning && !KestrelHeartbeat.RanLate(r)); // Kestrel's and the host's categories included

        // The server kept serving while the flood was on (each honest handshake also had to beat
        // the server's handshake timeout, or EchoAsync would have thrown), and it did so without a
        // pool thread per garbage connection: a handshake that blocked a thread while it waited for
        // a body would have made the pool add threads until the window of garbage had one each.
        Assert.True(openWhileServed.Max() >= GarbageInFlight / 2, $"no honest round ended while the flood was on (at most {openWhileServed.Max()} garbage connections open at the end of one)");
        Assert.True(peaks.PeakThreadPoolThreads < GarbageInFlight, $"the thread pool grew to {peaks.PeakThreadPoolThreads} threads for {GarbageInFlight} garbage connections at once: something blocked its threads");
    });

    /// <summary>
    /// Connects and sends random bytes. Even connections then wait for the server to close
    /// (returned); odd ones hang up at once, so that the server also sees garbage cut short.
    /// </summary>
    private static async Task<PeerClose?> SendGarbageAsync(EndPoint server, int index, SemaphoreSlim slots, GarbageCounter open)
    {
        await slots.WaitAsync();
        try
        {
            var random = new Random(20260701 + index);
            byte[] bytes = new byte[random.Next(1, MaxGarbageLength + 1)];
            random.NextBytes(bytes);
            using Socket socket = await RawPeer.ConnectAsync(server);
            open.Connected();
            try
            {
                await RawPeer.TrySendAsync(socket, bytes);
                if (index % 2 == 1)
                {
                    return null;
                }

                return await RawPeer.WaitForCloseAsync(socket, HandshakeTimeout + TimeSpan.FromSeconds(15));
            }
            finally
            {
                open.Closed();
            }
        }
        finally
        {
            slots.Release();
        }
    }

    private static bool IsOssuary(FakeLogRecord record) => (record.Category ?? "").StartsWith("Ossuary", StringComparison.Ordinal);

    private static Task Within(TimeSpan limit, Func<Task> test) => test().Within(limit);

    /// <summary>How many garbage connections are open, and when a full window of them has connected.</summary>
    private sealed class GarbageCounter(int window)
    {
        private readonly TaskCompletionSource _window = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _connected;
        private int _open;

        public Task WindowConnected => _window.Task;

        public int Open => Volatile.Read(ref _open);

        public void Connected()
        {
            Interlocked.Increment(ref _open);
            if (Interlocked.Increment(ref _connected) == window)
            {
                _window.TrySetResult();
            }
        }

        public void Closed() => Interlocked.Decrement(ref _open);
    }
}
