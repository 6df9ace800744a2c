using Ossuary.Samples.Telemetry.Keys;

namespace Ossuary.Samples.Telemetry.Commands;

/// <summary><c>fleet --devices 100 --out DIR</c>: generates the server's key and every device's.</summary>
internal static class FleetCommand
{
    public static int Run(CommandLine options)
    {
        int devices = options.Int("devices", 100, min: 1, max: 100_000);
        string directory = options.String("out", "fleet");
        options.RejectUnknown();

        Fleet fleet = Fleet.Generate(directory, devices);
        Console.WriteLine($"server key:      {fleet.ServerKeyPath} (secret) and {fleet.ServerPublicKeyPath}");
        Console.WriteLine($"authorized keys: {fleet.AuthorizedKeysPath} ({devices} devices)");
        Console.WriteLine($"device keys:     {fleet.DevicesDirectory}{Path.DirectorySeparatorChar}device-NNNN.key (secret)");
        return 0;
    }
}
