using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Samples.Telemetry.Server;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>A device that sends a line longer than the limit is cut off: its fault, logged at Debug, as the project's rule has it for what a peer causes.</summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryLongLineTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-long-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task ADeviceSendingAnEndlessLineIsCutOffAndLoggedAsTheDevicesFault() => LongLineAsync().WaitAsync(HardLimit);

    private async Task LongLineAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();
        using var log = new FakeLoggerProvider();
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [device.PublicKey],
            DatabasePath = Path.Combine(_directory, "telemetry.db"),
            LoggerProvider = log,
            LogLevel = LogLevel.Debug,
        });
        try
        {
            var options = new OssuaryClientOptions { Identity = device };
            options.TrustedServerKeys.Add(serverKey.PublicKey);
            await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options, budget.Token);
            await connection.Transport.Output.WriteAsync(Enumerable.Repeat((byte)'x', ReadingParser.MaxLineLength + 100).ToArray(), budget.Token);
            try
            {
                while (!(await connection.Transport.Input.ReadAsync(budget.Token)).IsCompleted)
                {
                }
            }
            catch (IOException)
            {
                // Cut off: how the device learns is not the point here.
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

        Assert.Equal(1, server.Registry.Find(device.PublicKey)!.Rejected);
        FakeLogRecord cut = Assert.Single(log.Collector.GetSnapshot(), r => r.Message.Contains("longer than the limit", StringComparison.Ordinal));
        // Debug, as a dropped connection: at Information, a log kept at Information showed a line for
        // every reconnect of a misbehaving device. The rejected count (the table, the metric) shows it.
        Assert.Equal(LogLevel.Debug, cut.Level);
    }
}
