using System.Net;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Samples.Telemetry.Server;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>The query command reads whatever devices stored: one device's odd timestamp must not hide every other device's totals.</summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryQueryTimestampTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(90);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-ts-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task ADeviceSendingMicrosecondTimestampsDoesNotBreakTheQuery() => QueryAsync().WaitAsync(HardLimit);

    private async Task QueryAsync()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var device = OssuaryIdentity.Generate();
        string database = Path.Combine(_directory, "telemetry.db");
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Address = IPAddress.Loopback,
            Identity = serverKey,
            AuthorizedDevices = [device.PublicKey],
            DatabasePath = database,
        });
        try
        {
            var options = new OssuaryClientOptions { Identity = device };
            options.TrustedServerKeys.Add(serverKey.PublicKey);
            await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options))
            {
                // A device whose clock library counts microseconds: a valid number, year 56,000 as milliseconds.
                await connection.Transport.Output.WriteAsync("sensor=temp value=21.5 ts=1718000000000000 seq=1\n"u8.ToArray());
            }

            while (server.Registry.SessionsEnded < 1)
            {
                await Task.Delay(10);
            }
        }
        finally
        {
            await server.DisposeAsync();
        }

        Assert.Equal(1, server.Writer.Persisted);
        (int code, string stdout, string stderr) = await TelemetryCommandLineTests.RunAsync(_directory, "query", "--db", database);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("1 device(s), 1 reading(s), 0 missing sequence number(s)", stdout, StringComparison.Ordinal);
        (code, stdout, stderr) = await TelemetryCommandLineTests.RunAsync(_directory, "query", "--db", database, "--device", device.PublicKey.ToString());
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains($"1 reading(s) of {device.PublicKey}", stdout, StringComparison.Ordinal);
        Assert.Contains("1718000000000000", stdout, StringComparison.Ordinal); // shown as stored, not hidden
    }
}
