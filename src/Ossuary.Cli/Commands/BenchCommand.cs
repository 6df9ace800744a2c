using System.CommandLine;
using Ossuary.Pipelines.Loopback;
using Ossuary.Pipelines.Loopback.Report;

namespace Ossuary.Cli.Commands;

/// <summary>
/// <c>ossuary bench</c>: the loopback harness (benchmarks/Ossuary.Pipelines.Loopback), Ossuary
/// next to plain TCP and SslStream TLS 1.3 in one process and one run. Progress goes to stderr,
/// the table to stdout.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "Shorter measurements: the whole run takes under a minute." };
        var json = new Option<string?>("--json") { Description = "Also write the figures to this file as JSON.", HelpName = "FILE" };
        var command = new Command("bench", "Measure Ossuary against plain TCP and SslStream TLS 1.3 over 127.0.0.1: throughput, handshakes per second, memory per idle connection.")
        {
            quick,
            json,
        };
        command.SetAction((parse, cancellationToken) => CliRunner.RunAsync(async () =>
        {
            BenchSettings settings = parse.GetValue(quick) ? BenchSettings.Quick : BenchSettings.Full;
            BenchReport report = await LoopbackBench.RunAsync(settings, Console.Error, cancellationToken);
            Console.Error.WriteLine();
            report.WriteTable(Console.Out);
            if (parse.GetValue(json) is { } path)
            {
                await using (FileStream file = File.Create(path))
                {
                    report.WriteJson(file);
                }

                Console.Error.WriteLine($"ossuary: wrote {path}");
            }

            return ExitCodes.Success;
        }));
        return command;
    }
}
