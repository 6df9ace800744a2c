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
/// A device that numbers its readings (<c>seq=</c>) but sends no <c>ts=</c> gets the server's time of
/// receipt as the reading's timestamp, which a resend does not share: the resend looked like another
/// reading under a reused number and was stored a second time (event 1723), and published again under
/// another message id.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryUntimedResendTests : IDisposable
{
    private const string Line = "sensor=temp value=21.5 seq=7\n";
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-untimed-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task AResendOfAReadingWithoutATimestampIsStoredOnce()
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
            await SendAsync(server, serverKey, device, budget.Token);
            await PastAsync(ReadingQueries.Readings(database, device.PublicKey.ToString(), sinceMs: 0).Single().TimestampMs, budget.Token);
            await SendAsync(server, serverKey, device, budget.Token);
        }
        finally
        {
            await server.DisposeAsync();
        }

        Assert.Single(ReadingQueries.Readings(database, device.PublicKey.ToString(), sinceMs: 0));
        Assert.Equal(0, store.Reused);
        Assert.Equal(1, server.Writer.Duplicates);
        Assert.DoesNotContain(logger.Collector.GetSnapshot(), record => record.Id.Id == 1723);
    }

    [Fact]
    public async Task AResendOfAReadingWithoutATimestampIsPublishedOnce()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using NatsServerProcess nats = await NatsServerProcess.StartAsync(budget.Token);
        var jetStream = new JetStreamOptions { Url = nats.Url, Stream = "TELEMETRY_UNTIMED", Subject = "untimed.readings" };
        using OssuaryIdentity serverKey = OssuaryIdentity.Generate();
        using OssuaryIdentity device = OssuaryIdentity.Generate();
        TelemetryServer node = await TelemetryServer.StartAsync(new TelemetryServerOptions { Identity = serverKey, AuthorizedDevices = [device.PublicKey], JetStream = jetStream });
        try
        {
            await SendAsync(node, serverKey, device, budget.Token);
            await PastAsync(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), budget.Token);
            await SendAsync(node, serverKey, device, budget.Token);
        }
        finally
        {
            await node.DisposeAsync();
        }

        Assert.Equal(1, ((JetStreamPublisher)node.Store).Duplicates);
        await using var client = new NatsClient(nats.Url);
        INatsJSStream stream = await client.CreateJetStreamContext().GetStreamAsync(jetStream.Stream, cancellationToken: budget.Token);
        Assert.Equal(1L, stream.Info.State.Messages);

        // What consume stores of it, under the id and header the node gave it: the reading, once.
        string database = Path.Combine(_directory, "consumed.db");
        var logger = new FakeLogger();
        await using SqliteReadingStore store = SqliteReadingStore.Open(database, logger);
        var consumer = new JetStreamStoreConsumer(jetStream, store, logger);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(budget.Token);
        Task consuming = consumer.RunAsync(stop.Token);
        await ConsumerProgress.WaitForAsync(() => consumer.Stored + consumer.Duplicates >= 1, consuming, budget.Token);
        await stop.CancelAsync();
        await consuming;
        Assert.Single(ReadingQueries.Readings(database, device.PublicKey.ToString(), sinceMs: 0));
    }

    [Fact]
    public void TheFingerprintOfAReadingWithoutATimestampLeavesOutTheTimeOfReceipt()
    {
        var first = new StoredReading(new string('a', 64), 7, "temp", 21.5, 1_000, Untimed: true);
        StoredReading resent = first with { TimestampMs = 2_000 };
        Assert.Equal(ReadingFingerprint.Of(first), ReadingFingerprint.Of(resent));
        Assert.True(ReadingFingerprint.SameMeasurement(first, resent));
        Assert.NotEqual(ReadingFingerprint.Of(first), ReadingFingerprint.Of(first with { Value = 22 }));

        // A device's own timestamps still tell its readings apart.
        Assert.NotEqual(ReadingFingerprint.Of(first with { Untimed = false }), ReadingFingerprint.Of(resent with { Untimed = false }));
    }

    /// <summary>Waits until the clock's millisecond is past <paramref name="ms"/>: the resend is received at another time.</summary>
    private static async Task PastAsync(long ms, CancellationToken cancellationToken)
    {
        while (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() <= ms)
        {
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    private static async Task SendAsync(TelemetryServer server, OssuaryIdentity serverKey, OssuaryIdentity device, CancellationToken cancellationToken)
    {
        var options = new OssuaryClientOptions { Identity = device };
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options, cancellationToken);
        await connection.Transport.Output.WriteAsync(Encoding.UTF8.GetBytes(Line), cancellationToken);
        await DeliveryCheck.ConfirmAsync(connection.Transport, 1, cancellationToken);
    }
}
