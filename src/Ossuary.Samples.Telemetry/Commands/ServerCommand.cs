using System.Net;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Trust;
using Ossuary.Samples.Telemetry.Keys;
using Ossuary.Samples.Telemetry.Server;

namespace Ossuary.Samples.Telemetry.Commands;

/// <summary>
/// <c>server --port 7400 --key server.key --authorized-keys devices.keys</c>: counts readings until
/// Ctrl+C (or SIGTERM), printing the summary table every <c>--summary-seconds</c> and once more after
/// the last connection has closed.
/// </summary>
internal static class ServerCommand
{
    public static async Task<int> RunAsync(CommandLine options)
    {
        IPAddress address = IPAddress.TryParse(options.String("bind", "127.0.0.1"), out IPAddress? parsed)
            ? parsed
            : throw new UsageException("--bind must be an IP address, e.g. 0.0.0.0");
        int port = options.Int("port", 7400, max: 65535);
        string keyPath = options.String("key", "fleet/server.key");
        string authorizedPath = options.String("authorized-keys", "fleet/devices.keys");
        int seconds = options.Int("summary-seconds", 5, min: 1);
        int rows = options.Int("rows", 0);
        options.RejectUnknown();

        using OssuaryIdentity identity = KeyFiles.ReadSecretKey(keyPath);
        IReadOnlyList<OssuaryPublicKey> devices = OssuaryAuthorizedKeys.Load(authorizedPath);
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Address = address,
            Port = port,
            Identity = identity,
            AuthorizedDevices = devices.ToList(),
        });
        Console.WriteLine($"listening on {server.EndPoint} as {identity.PublicKey}; {devices.Count} devices authorized. Ctrl+C stops.");

        var reporter = new SummaryReporter(server.Registry, Console.Out, rows == 0 ? null : rows);
        try
        {
            await reporter.RunAsync(TimeSpan.FromSeconds(seconds), server.Stopping);
        }
        finally
        {
            // Stopping first sends every device a Disconnect, so the final table counts all it received.
            await server.DisposeAsync();
        }

        Console.WriteLine("stopped; final counts:");
        reporter.Report();
        return 0;
    }
}
