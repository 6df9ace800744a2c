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
        var logger = new FakeLogger();
        await using JetStreamPublisher publisher = await JetStreamPublisher.ConnectAsync(
            new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_CAUSE", Subject = "cause.readings" }, logger, budget.Token);

        // Nothing listens on the port: each attempt is refused, and the operator reads that, not only "lost".
        await KillAndWaitForReconnectFailuresAsync(nats, budget.Token);

        FakeLogRecord cause = Assert.Single(logger.Collector.GetSnapshot(), record => record.Id.Id == Unreachable);
        Assert.Equal(LogLevel.Warning, cause.Level);
        Assert.Contains("refused", cause.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(nats.Url.Replace("nats://", "", StringComparison.Ordinal), cause.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Kills nats-server and returns once another client, on the same reconnect schedule, has failed
    /// three reconnects: so has the client under test.
    /// </summary>
    private static async Task KillAndWaitForReconnectFailuresAsync(NatsServerProcess nats, CancellationToken cancellationToken)
    {
        await using var observer = new NatsClient(nats.Url);
        await observer.PingAsync(cancellationToken);
        int failures = 0;
        observer.Connection.ReconnectFailed += (_, _) =>
        {
            Interlocked.Increment(ref failures);
            return ValueTask.CompletedTask;
        };

        await nats.StopAsync();
        while (Volatile.Read(ref failures) < 3)
        {
            await Task.Delay(50, cancellationToken);
        }
    }

    private static List<LogLevel> Levels(FakeLogCollector log, int id) =>
        [.. log.GetSnapshot().Where(r => r.Id.Id == id && r.Category?.Contains("JetStream", StringComparison.Ordinal) == true).Select(r => r.Level)];
}
