using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using NATS.Net;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Server;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// An ingestion node (<c>server --nats</c>) while its NATS server is down: it says so once, and says
/// when the server is back, at the levels <c>server</c> shows (it logs at Warning and above), and it
/// says why it cannot reconnect.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryPublisherOutageTests
{
    private const int Lost = 1713;
    private const int Back = 1714;
    private const int Unreachable = 1717;
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120);

    [Fact]
    public Task TheNodeSaysOnceThatItLostNatsAndSaysWhenItIsBack() => NodeOutageAsync().WaitAsync(HardLimit);

    [Fact]
    public Task WhyNatsCannotBeReachedAgainIsLoggedOnceAnOutage() => CauseAsync().WaitAsync(HardLimit);

    private static async Task NodeOutageAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();
        using var log = new FakeLoggerProvider();
        await using TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [device.PublicKey],
            JetStream = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_NODE_DOWN", Subject = "nodedown.readings" },

            // As `server` runs: Warning and above.
            LoggerProvider = log,
            LogLevel = LogLevel.Warning,
        });

        await KillAndWaitForReconnectFailuresAsync(nats, budget.Token);
        Assert.Equal([LogLevel.Warning], Levels(log.Collector, Lost));
        Assert.Empty(Levels(log.Collector, Back));

        await nats.RestartAsync(budget.Token);
        while (Levels(log.Collector, Back).Count == 0)
        {
            await Task.Delay(50, budget.Token);
        }

        Assert.Equal([LogLevel.Warning], Levels(log.Collector, Lost));
        Assert.Equal([LogLevel.Information], Levels(log.Collector, Back));
    }

    private static async Task CauseAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);

        // Through a proxy that stops listening and then drops its connections: every reconnect is
        // refused. A killed nats-server could not promise that: the kernel may end its connections
        // before its listener, and a reconnect quick enough got into the dying listener's backlog and
        // was reset. The node then said "Connection reset by peer", truly, and this failed (1 CI run in 4).
        await using var proxy = new HoldingProxy(new IPEndPoint(IPAddress.Loopback, new Uri(nats.Url).Port));
        string address = $"127.0.0.1:{proxy.EndPoint.Port}"; // taken now: a stopped listener says port 0
        string url = $"nats://{address}";
        var logger = new FakeLogger();
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(
            new JetStreamOptions { Url = url, Stream = "TELEMETRY_CAUSE", Subject = "cause.readings" }, logger, budget.Token);

        // Nothing listens on the port: each attempt is refused, and the operator reads that, not only "lost".
        await CutAndWaitForReconnectFailuresAsync(url, proxy.DropAsync, budget.Token);

        FakeLogRecord cause = Assert.Single(logger.Collector.GetSnapshot(), record => record.Id.Id == Unreachable);
        Assert.Equal(LogLevel.Warning, cause.Level);
        Assert.True(cause.Message.Contains("refused", StringComparison.OrdinalIgnoreCase), cause.Message); // the whole message if not
        Assert.Contains(address, cause.Message, StringComparison.Ordinal);
    }

    private static Task KillAndWaitForReconnectFailuresAsync(NatsServerProcess nats, CancellationToken cancellationToken) =>
        CutAndWaitForReconnectFailuresAsync(nats.Url, nats.StopAsync, cancellationToken);

    /// <summary>
    /// Cuts the clients of <paramref name="url"/> off (<paramref name="cut"/>) and returns once another
    /// client, on the same reconnect schedule, has failed three reconnects: so has the client under test.
    /// </summary>
    private static async Task CutAndWaitForReconnectFailuresAsync(string url, Func<Task> cut, CancellationToken cancellationToken)
    {
        await using var observer = new NatsClient(url);
        await observer.PingAsync(cancellationToken);
        int failures = 0;
        observer.Connection.ReconnectFailed += (_, _) =>
        {
            Interlocked.Increment(ref failures);
            return ValueTask.CompletedTask;
        };

        await cut();
        while (Volatile.Read(ref failures) < 3)
        {
            await Task.Delay(50, cancellationToken);
        }
    }

    private static List<LogLevel> Levels(FakeLogCollector log, int id) =>
        [.. log.GetSnapshot().Where(r => r.Id.Id == id && r.Category?.Contains("JetStream", StringComparison.Ordinal) == true).Select(r => r.Level)];
}
