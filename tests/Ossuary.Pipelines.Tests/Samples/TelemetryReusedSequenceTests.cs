using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging.Testing;
using NATS.Client.JetStream;
using NATS.Net;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Load;
using Ossuary.Samples.Telemetry.Server;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// A device that numbers its readings from 1 again (a reboot, a factory reset) sends new readings under
/// numbers the store holds: they were acknowledged (<c>ok N</c>) and dropped as resends, by JetStream's
/// duplicate window and by SQLite's unique (device, seq). A true resend must still be stored once.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryReusedSequenceTests : IDisposable
{
    private const int Readings = 5;
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-reused-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task ReadingsUnderReusedSequenceNumbersAreStoredAndAResendOnce()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        using OssuaryIdentity serverKey = OssuaryIdentity.Generate();
        using OssuaryIdentity device = OssuaryIdentity.Generate();
        string database = Path.Combine(_directory, "direct.db");
        var logger = new FakeLogger();
        await using SqliteReadingStore store = SqliteReadingStore.Open(database, logger);
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions { Identity = serverKey, AuthorizedDevices = [device.PublicKey], Store = store });
        try
        {
            await SendDeviceLifeAsync(server, serverKey, device, budget.Token);
        }
        finally
        {
            await server.DisposeAsync();
        }

        AssertStored(database, device);
        AssertSaidOnce(logger, device);
        Assert.Equal(Readings, store.Reused);
    }

    [Fact]
    public async Task ReadingsUnderReusedSequenceNumbersAreStoredThroughJetStreamAndAResendOnce()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var jetStream = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_REUSED", Subject = "reused.readings" };
        using OssuaryIdentity serverKey = OssuaryIdentity.Generate();
        using OssuaryIdentity device = OssuaryIdentity.Generate();
        TelemetryServer node = await TelemetryServer.StartAsync(new TelemetryServerOptions { Identity = serverKey, AuthorizedDevices = [device.PublicKey], JetStream = jetStream, BatchSize = 4 });
        long duplicates;
        try
        {
            await SendDeviceLifeAsync(node, serverKey, device, budget.Token);
        }
        finally
        {
            await node.DisposeAsync();
            duplicates = ((JetStreamPublisher)node.Store).Duplicates;
        }

        // JetStream dropped the resends, and only them: a reused number with another reading is a new message.
        Assert.Equal(2 * Readings, duplicates);
        ulong published;
        await using (var client = new NatsClient(nats.Url))
        {
            published = (await client.CreateJetStreamContext().GetStreamAsync(jetStream.Stream, cancellationToken: budget.Token)).Info.State.LastSeq;
        }

        string database = Path.Combine(_directory, "consumed.db");
        var logger = new FakeLogger();
        await using SqliteReadingStore store = SqliteReadingStore.Open(database, logger);
        var consumer = new JetStreamStoreConsumer(jetStream, store, logger);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token);
        Task consuming = consumer.RunAsync(stop.Token);
        await ConsumerProgress.WaitForAsync(() => consumer.Stored + consumer.Duplicates >= (long)published, consuming, budget.Token);
        await stop.CancelAsync();
        await consuming;

        AssertStored(database, device);
        AssertSaidOnce(logger, device);
    }

    /// <summary>Seq 1..N; a reboot: seq 1..N again, other readings; then both lives' readings resent as they were. Each run acknowledged in full.</summary>
    private static async Task SendDeviceLifeAsync(TelemetryServer server, OssuaryIdentity serverKey, OssuaryIdentity device, CancellationToken cancellationToken)
    {
        await SendAsync(server, serverKey, device, FirstLife(), cancellationToken);
        await SendAsync(server, serverKey, device, SecondLife(), cancellationToken);
        await SendAsync(server, serverKey, device, FirstLife(), cancellationToken);
        await SendAsync(server, serverKey, device, SecondLife(), cancellationToken);
    }

    private static IEnumerable<string> FirstLife() =>
        Enumerable.Range(1, Readings).Select(seq => string.Create(CultureInfo.InvariantCulture, $"sensor=temp value={seq} ts={1_000 + seq} seq={seq}\n"));

    private static IEnumerable<string> SecondLife() =>
        Enumerable.Range(1, Readings).Select(seq => string.Create(CultureInfo.InvariantCulture, $"sensor=temp value={100 + seq} ts={9_000 + seq} seq={seq}\n"));

    private static void AssertStored(string database, OssuaryIdentity device)
    {
        // Both lives' readings, each once: nothing a device was told is stored is missing.
        DeviceTotals totals = ReadingQueries.Totals(database).Single();
        Assert.Equal(device.PublicKey.ToString(), totals.Device);
        Assert.Equal(2L * Readings, totals.Readings);
        IReadOnlyList<StoredReading> stored = ReadingQueries.Readings(database, totals.Device, sinceMs: 0);
        Assert.Equal(
            Enumerable.Range(1, Readings).Select(seq => (double)seq).Concat(Enumerable.Range(101, Readings).Select(seq => (double)seq)),
            stored.Select(reading => reading.Value).Order());
    }

    private static void AssertSaidOnce(FakeLogger logger, OssuaryIdentity device)
    {
        FakeLogRecord[] said = logger.Collector.GetSnapshot().Where(record => record.Id.Id == 1723).ToArray();
        FakeLogRecord warning = Assert.Single(said);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, warning.Level);
        Assert.Contains(device.PublicKey.ToString(), warning.Message, StringComparison.Ordinal);
    }

    private static async Task SendAsync(TelemetryServer server, OssuaryIdentity serverKey, OssuaryIdentity device, IEnumerable<string> lines, CancellationToken cancellationToken)
    {
        var options = new OssuaryClientOptions { Identity = device };
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options, cancellationToken);
        string text = string.Concat(lines);
        await connection.Transport.Output.WriteAsync(Encoding.UTF8.GetBytes(text), cancellationToken);

        // ok N: the server says every one of them is stored (published, with a node).
        await DeliveryCheck.ConfirmAsync(connection.Transport, text.Count(c => c == '\n'), cancellationToken);
    }
}
