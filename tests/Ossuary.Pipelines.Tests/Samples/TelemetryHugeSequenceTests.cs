using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Samples.Telemetry.Server;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// A device's sequence numbers are its own: one that jumps from 0 to <see cref="long.MaxValue"/> (a
/// firmware's "unset", say) leaves nearly 2^63 numbers missing, and two such devices must not break
/// what adds those counts up across devices.
/// </summary>
[Collection(TelemetryServerCollection.Name)]
public sealed class TelemetryHugeSequenceTests : IDisposable
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromSeconds(120);

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-seq-").FullName;
    private readonly OssuaryIdentity _serverKey = OssuaryIdentity.Generate();
    private readonly OssuaryIdentity[] _devices = [OssuaryIdentity.Generate(), OssuaryIdentity.Generate()];

    public void Dispose()
    {
        _serverKey.Dispose();
        foreach (OssuaryIdentity device in _devices)
        {
            device.Dispose();
        }

        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public Task TwoDevicesJumpingToTheLargestSequenceNumberDoNotCrashTheQuery() => QueryAsync().WaitAsync(HardLimit);

    [Fact]
    public Task TwoDevicesJumpingToTheLargestSequenceNumberDoNotBreakTheMetrics() => ScrapeAsync().WaitAsync(HardLimit);

    private async Task QueryAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        string database = Path.Combine(_directory, "telemetry.db");
        await using (TelemetryServer server = await StartAsync(database, metrics: false))
        {
            await SendJumpsAsync(server, budget.Token);
        }

        (int code, string stdout, string stderr) = await TelemetryCommandLineTests.RunAsync(_directory, "query", "--db", database);

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        // Each device: 0 and 2^63 - 1 stored, 2^63 - 2 missing; both together 2^64 - 4.
        Assert.Contains("2 device(s), 4 reading(s), 18446744073709551612 missing sequence number(s)", stdout, StringComparison.Ordinal);
    }

    private async Task ScrapeAsync()
    {
        using var budget = new CancellationTokenSource(HardLimit);
        await using TelemetryServer server = await StartAsync(Path.Combine(_directory, "telemetry.db"), metrics: true);
        await SendJumpsAsync(server, budget.Token);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        string text = await http.GetStringAsync(new Uri($"http://{server.MetricsEndPoint}/metrics"), budget.Token);

        // The gaps figure is still there (not dropped from every scrape by an overflow), at 2^64 - 4.
        Assert.Contains("telemetry_readings_received_total", text, StringComparison.Ordinal);
        string? gaps = text.Split('\n').FirstOrDefault(line => line.StartsWith("telemetry_readings_gaps{", StringComparison.Ordinal));
        Assert.True(gaps is not null, $"no telemetry_readings_gaps in:\n{text}");
        Assert.Equal(2.0 * (long.MaxValue - 1), double.Parse(gaps.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    private Task<TelemetryServer> StartAsync(string database, bool metrics) =>
        TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Identity = _serverKey,
            AuthorizedDevices = _devices.Select(d => d.PublicKey).ToList(),
            DatabasePath = database,
            MetricsPort = metrics ? 0 : null,
        });

    /// <summary>Each device sends sequence numbers 0 and <see cref="long.MaxValue"/> and closes; returns once the server has stored all four.</summary>
    private async Task SendJumpsAsync(TelemetryServer server, CancellationToken cancellationToken)
    {
        foreach (OssuaryIdentity device in _devices)
        {
            var options = new OssuaryClientOptions { Identity = device };
            options.TrustedServerKeys.Add(_serverKey.PublicKey);
            await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options, cancellationToken);
            await connection.Transport.Output.WriteAsync("sensor=temp value=1 seq=0\nsensor=temp value=2 seq=9223372036854775807\n"u8.ToArray(), cancellationToken);
        }

        while (server.Registry.SessionsEnded < _devices.Length || server.Writer.Persisted < 2 * _devices.Length)
        {
            await Task.Delay(10, cancellationToken);
        }
    }
}
