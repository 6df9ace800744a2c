using System.Net;
using Ossuary.Pipelines;
using Ossuary.Samples.Telemetry.Keys;
using Ossuary.Samples.Telemetry.Load;

namespace Ossuary.Samples.Telemetry.Commands;

/// <summary>
/// <c>load --host 127.0.0.1 --port 7400 --keys DIR --devices 100 --readings 50 --interval-ms 10</c>:
/// simulates the fleet's first N devices and prints the totals. Exit code 1 if any device failed.
/// </summary>
internal static class LoadCommand
{
    public static async Task<int> RunAsync(CommandLine options)
    {
        string host = options.String("host", "127.0.0.1");
        int port = options.Int("port", 7400, min: 1, max: 65535);
        var fleet = new Fleet(options.String("keys", "fleet"));
        int count = options.Int("devices", 100, min: 1);
        int readings = options.Int("readings", 50);
        int intervalMs = options.Int("interval-ms", 10);
        options.RejectUnknown();

        IPAddress address = IPAddress.TryParse(host, out IPAddress? literal)
            ? literal
            : (await Dns.GetHostAddressesAsync(host)).First();
        IReadOnlyList<OssuaryIdentity> devices = fleet.LoadDevices(count);
        try
        {
            using var stop = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                stop.Cancel();
            };

            LoadResult result = await LoadGenerator.RunAsync(new LoadOptions
            {
                Server = new IPEndPoint(address, port),
                ServerKey = fleet.LoadServerPublicKey(),
                Devices = devices,
                ReadingsPerDevice = readings,
                Interval = TimeSpan.FromMilliseconds(intervalMs),
            }, cancellationToken: stop.Token);

            Print(result);
            return result.Failed == 0 ? 0 : 1;
        }
        finally
        {
            foreach (OssuaryIdentity device in devices)
            {
                device.Dispose();
            }
        }
    }

    private static void Print(LoadResult result)
    {
        Console.WriteLine($"devices:  {result.Devices.Count} ({result.Succeeded} completed, {result.Failed} failed)");
        Console.WriteLine($"readings: {result.ReadingsSent} sent in {result.Elapsed.TotalSeconds:F2} s ({result.Throughput:F0} readings/s)");
        foreach (var failure in result.Devices.Where(device => device.Error is not null).GroupBy(device => Describe(device.Error!)))
        {
            Console.WriteLine($"  {failure.Count()} device(s): {failure.Key}");
        }
    }

    private static string Describe(Exception error) =>
        error is OssuaryException ossuary ? $"{ossuary.Reason}: {ossuary.Message}" : $"{error.GetType().Name}: {error.Message}";
}
