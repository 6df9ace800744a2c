using System.Globalization;

namespace Ossuary.Pipelines.Telemetry.Bench;

/// <summary>The command line: <c>[--quick] [--devices N] [--seconds S] [--json FILE] [--store] [--store-readings N] [--readings-per-flush N] [--hold-idle S] [--no-store]</c>.</summary>
internal sealed record BenchSettings(bool Quick, int Devices, int Seconds, string? JsonPath, bool StoreOnly, int StoreReadings, int ReadingsPerFlush, int HoldIdleSeconds, bool NoStore)
{
    public static BenchSettings Parse(string[] args)
    {
        bool quick = args.Contains("--quick");
        int? devices = null, seconds = null, storeReadings = null, perFlush = null, holdIdle = null;
        string? json = null;
        bool store = false, noStore = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick":
                    break;
                case "--store":
                    store = true;
                    break;
                case "--devices":
                    devices = Number(args, ++i, "--devices");
                    break;
                case "--seconds":
                    seconds = Number(args, ++i, "--seconds");
                    break;
                case "--store-readings":
                    storeReadings = Number(args, ++i, "--store-readings");
                    break;
                case "--readings-per-flush":
                    perFlush = Number(args, ++i, "--readings-per-flush");
                    break;
                case "--no-store":
                    noStore = true;
                    break;
                case "--hold-idle":
                    // Waits this long with every device connected and idle, for dotnet-gcdump or dotnet-counters.
                    holdIdle = Number(args, ++i, "--hold-idle");
                    break;
                case "--json":
                    json = i + 1 < args.Length ? args[++i] : throw new ArgumentException("--json needs a file name");
                    break;
                default:
                    throw new ArgumentException($"unknown option '{args[i]}'; options: --quick --devices N --seconds S --json FILE --store --store-readings N --readings-per-flush N --hold-idle S --no-store");
            }
        }

        return new BenchSettings(
            quick,
            devices ?? (quick ? 1_000 : 10_000),
            seconds ?? (quick ? 20 : 60),
            json,
            store,
            storeReadings ?? (quick ? 200_000 : 2_000_000),
            perFlush ?? 32,
            holdIdle ?? 0,
            noStore);
    }

    private static int Number(string[] args, int i, string name) =>
        i < args.Length && int.TryParse(args[i], NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value > 0
            ? value
            : throw new ArgumentException($"{name} needs a positive whole number");
}
