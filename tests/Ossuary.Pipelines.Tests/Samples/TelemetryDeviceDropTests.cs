using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Samples.Telemetry.Server;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// A device whose connection goes without a Disconnect (power, network): the device's doing, logged at
/// Debug as the README's logging rules say of what the peer causes, so that a fleet of flaky devices
/// cannot fill a log kept at Information.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryDeviceDropTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-drop-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task ADeviceThatDropsItsConnectionIsLoggedAtDebug() => DropAsync().WaitAsync(HardLimit);

    private async Task DropAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();
        using var log = new FakeLoggerProvider();
        await using TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = serverKey,
            AuthorizedDevices = [device.PublicKey],
            DatabasePath = Path.Combine(_directory, "telemetry.db"),
            LoggerProvider = log,
            LogLevel = LogLevel.Debug,
        });
        var proxy = new HoldingProxy(server.EndPoint);
        var options = new OssuaryClientOptions { Identity = device };
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(proxy.EndPoint, options, budget.Token);
        await connection.Transport.Output.WriteAsync("sensor=temp value=1 seq=1\nsync\n"u8.ToArray(), budget.Token);
        while (server.Writer.Persisted < 1)
        {
            await Task.Delay(10, budget.Token);
        }

        // The network between them goes: both sockets close, no Disconnect reaches the server.
        await proxy.DisposeAsync();
        while (server.Registry.SessionsEnded < 1)
        {
            await Task.Delay(10, budget.Token);
        }

        FakeLogRecord dropped = Assert.Single(log.Collector.GetSnapshot(), r => r.Message.Contains("dropped its connection", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Debug, dropped.Level);
        Assert.Contains(device.PublicKey.ToString(), dropped.Message, StringComparison.Ordinal);
    }
}
