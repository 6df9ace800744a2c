using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Samples.Telemetry.Server;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>Loss shows: a last line without its newline is not a reading, and must be counted as such rather than vanish.</summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryUnterminatedLineTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-eol-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task ALastLineWithoutItsNewlineIsCountedAsRejected() => UnterminatedAsync().WaitAsync(HardLimit);

    private async Task UnterminatedAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [device.PublicKey],
            DatabasePath = Path.Combine(_directory, "telemetry.db"),
        });
        try
        {
            var options = new OssuaryClientOptions { Identity = device };
            options.TrustedServerKeys.Add(serverKey.PublicKey);

            // A device that closes cleanly (Disconnect) right after a reading it did not finish.
            await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options, budget.Token))
            {
                await connection.Transport.Output.WriteAsync("sensor=temp value=1 seq=1\nsensor=temp value=2 seq=2"u8.ToArray(), budget.Token);
            }

            while (server.Registry.SessionsEnded < 1)
            {
                await Task.Delay(10, budget.Token);
            }
        }
        finally
        {
            await server.DisposeAsync();
        }

        DeviceSnapshot seen = server.Registry.Find(device.PublicKey)!;
        Assert.Equal((1L, 1L), (seen.Readings, seen.Rejected));
        Assert.Equal(1, server.Writer.Persisted);
    }
}
