using System.CommandLine;
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
    public static Command Create()
    {
        var host = SampleOptions.Text("--host", "The server's address or name.", "127.0.0.1");
        var port = SampleOptions.Int("--port", "The server's port.", 7400, min: 1, max: 65535);
        var keys = SampleOptions.Text("--keys", "The fleet directory (fleet --out).", "fleet");
        var devices = SampleOptions.Int("--devices", "How many of the fleet's devices to simulate.", 100, min: 1);
        var readings = SampleOptions.Int("--readings", "Readings per device.", 50);
        var interval = SampleOptions.Int("--interval-ms", "Milliseconds between a device's readings (0: as fast as it can).", 10);
        var command = new Command("load", "Simulate the fleet's devices and print the totals (exit 1 if any failed).") { host, port, keys, devices, readings, interval };
        command.SetAction((parse, _) => RunAsync(
            parse.GetValue(host)!, parse.GetValue(port), new Fleet(parse.GetValue(keys)!), parse.GetValue(devices), parse.GetValue(readings), parse.GetValue(interval)));
        return command;
    }

    private static async Task<int> RunAsync(string host, int port, Fleet fleet, int count, int readings, int intervalMs)
    {
        EndPoint server = ServerEndPoint(host, port);
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
                Server = server,
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

    /// <summary>
    /// A name is left to the client, which tries every address it resolves to in turn (as
    /// <c>Socket.ConnectAsync</c> does): cut to its first address here, a name listing ::1 before
    /// 127.0.0.1 for a server on IPv4 only failed every device, and one resolving to nothing crashed.
    /// </summary>
    internal static EndPoint ServerEndPoint(string host, int port) =>
        IPAddress.TryParse(host, out IPAddress? literal) ? new IPEndPoint(literal, port) : new DnsEndPoint(host, port);

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
