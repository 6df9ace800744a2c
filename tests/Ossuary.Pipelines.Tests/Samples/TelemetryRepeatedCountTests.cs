using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Samples.Telemetry.Load;
using Ossuary.Samples.Telemetry.Server;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// A device's <c>repeated</c> count is its resends: a reading under a number the device had used for
/// another (it restarted its numbering) is new data, stored (event 1723), and was counted as a repeat.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryRepeatedCountTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(60);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-repeated-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task AReadingUnderAReusedNumberIsNotCountedAsARepeat()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        using OssuaryIdentity serverKey = OssuaryIdentity.Generate();
        using OssuaryIdentity device = OssuaryIdentity.Generate();
        await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(_directory, "telemetry.db"));
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions { Identity = serverKey, AuthorizedDevices = [device.PublicKey], Store = store });
        try
        {
            var options = new OssuaryClientOptions { Identity = device };
            options.TrustedServerKeys.Add(serverKey.PublicKey);
            await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options, budget.Token);

            // The first reading under 1, another reading under 1 (a reboot), then the first one resent.
            await connection.Transport.Output.WriteAsync(
                "sensor=temp value=1 seq=1 ts=1700000000000\nsensor=temp value=2 seq=1 ts=1700000001000\nsensor=temp value=1 seq=1 ts=1700000000000\n"u8.ToArray(), budget.Token);
            await DeliveryCheck.ConfirmAsync(connection.Transport, 3, budget.Token);
        }
        finally
        {
            await server.DisposeAsync();
        }

        // What the store found: one resend, one reading under a reused number.
        Assert.Equal(1, server.Writer.Duplicates);
        Assert.Equal(1, store.Reused);
        DeviceSnapshot snapshot = server.Registry.Find(device.PublicKey)!;
        Assert.Equal(1, snapshot.Repeats);
        Assert.Equal(0, snapshot.Gaps);
    }
}
