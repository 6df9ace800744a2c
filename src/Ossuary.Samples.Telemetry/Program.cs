using Ossuary.Pipelines;
using Ossuary.Samples.Telemetry.Commands;

namespace Ossuary.Samples.Telemetry;

/// <summary>
/// Ossuary telemetry sample: <c>fleet</c> makes keys, <c>server</c> counts readings from authenticated
/// devices, <c>load</c> simulates the devices. Exit codes: 0 success, 1 failure, 2 bad command line.
/// </summary>
internal static class Program
{
    private const string Usage = """
        usage:
          fleet  --devices 100 --out DIR
          server --port 7400 --key DIR/server.key --authorized-keys DIR/devices.keys [--bind 127.0.0.1] [--summary-seconds 5] [--rows N]
          load   --host 127.0.0.1 --port 7400 --keys DIR --devices 100 --readings 50 --interval-ms 10
        """;

    public static async Task<int> Main(string[] args)
    {
        try
        {
            var options = new CommandLine(args.Skip(1));
            return args.FirstOrDefault() switch
            {
                "fleet" => FleetCommand.Run(options),
                "server" => await ServerCommand.RunAsync(options),
                "load" => await LoadCommand.RunAsync(options),
                _ => throw new UsageException("name a command: fleet, server or load"),
            };
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }
        catch (Exception e) when (e is IOException or FormatException or InvalidOperationException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
        {
            string reason = e is OssuaryException ossuary ? $" ({ossuary.Reason})" : "";
            Console.Error.WriteLine($"error: {e.GetType().Name}{reason}: {e.Message.ReplaceLineEndings(" ")}");
            return 1;
        }
    }
}
