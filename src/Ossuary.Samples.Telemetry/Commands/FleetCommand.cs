using System.CommandLine;
using Ossuary.Samples.Telemetry.Keys;

namespace Ossuary.Samples.Telemetry.Commands;

/// <summary><c>fleet --devices 100 --out DIR</c>: generates the server's key and every device's.</summary>
internal static class FleetCommand
{
    public static Command Create()
    {
        var devices = SampleOptions.Int("--devices", "How many device keys to make.", 100, min: 1, max: 100_000);
        var output = SampleOptions.Text("--out", "Directory for the keys (created; a .gitignore in it keeps the secret keys out of git).", "fleet");
        var command = new Command("fleet", "Generate the server's key, every device's key and the allow-list.") { devices, output };
        command.SetAction(parse =>
        {
            int count = parse.GetValue(devices);
            Fleet fleet = Fleet.Generate(parse.GetValue(output)!, count);
            Console.WriteLine($"server key:      {fleet.ServerKeyPath} (secret) and {fleet.ServerPublicKeyPath}");
            Console.WriteLine($"authorized keys: {fleet.AuthorizedKeysPath} ({count} devices)");
            Console.WriteLine($"device keys:     {fleet.DevicesDirectory}{Path.DirectorySeparatorChar}device-NNNN.key (secret)");
            return 0;
        });
        return command;
    }
}
