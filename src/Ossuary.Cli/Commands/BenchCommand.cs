using System.CommandLine;
using System.Diagnostics;
using System.Reflection;
using Ossuary.Pipelines.Loopback;
using Ossuary.Pipelines.Loopback.Report;

namespace Ossuary.Cli.Commands;

/// <summary>
/// <c>ossuary bench</c>: the loopback harness (benchmarks/Ossuary.Pipelines.Loopback), Ossuary
/// next to plain TCP and SslStream TLS 1.3 in one process and one run. Progress goes to stderr,
/// the table to stdout, or to stderr when <c>--json -</c> puts the JSON there.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "Shorter measurements, still in interleaved rounds with medians, and idle memory only for the figures the targets use (tcp, tcp-kestrel, tls13-aesgcm, ossuary): the whole run takes under a minute on a quiet machine." };
        var json = new Option<string?>("--json") { Description = "Also write the figures to this file as JSON ('-': to stdout, the table then to stderr).", HelpName = "FILE" };
        var sections = new Option<BenchSections[]>("--sections")
        {
            Description = "Run only these measurements (IdleMemory, CryptoBound, Handshakes, Throughput); all by default.",
            AllowMultipleArgumentsPerToken = true,
        };
        var targets = new Option<string[]>("--targets")
        {
            Description = "Measure only these targets (tcp, tcp-packets, tcp-packets-kestrel, tcp-kestrel, tls13-aesgcm, tls13-chacha, tls13-kestrel, ossuary, ossuary-raw, ossuary-64k); all by default.",
            AllowMultipleArgumentsPerToken = true,
        };
        var checkTargets = new Option<bool>("--check-targets") { Description = "Also print the project's performance targets and whether this run met them (for maintainers)." };
        var command = new Command("bench", "Measure Ossuary against plain TCP and SslStream TLS 1.3 over 127.0.0.1: throughput, handshakes per second, memory per idle connection.")
        {
            quick,
            json,
            sections,
            targets,
            checkTargets,
        };
        command.SetAction((parse, cancellationToken) => CliRunner.RunAsync(async () =>
        {
            bool optimized = IsOptimized(typeof(LoopbackBench).Assembly) && IsOptimized(typeof(Ossuary.Pipelines.Protocol.OssuarySession).Assembly);
            if (!optimized)
            {
                Console.Error.WriteLine("ossuary: warning: this is a Debug build; its figures say little. Run with -c Release.");
            }

            // Checked before the run, which takes minutes: a path that cannot be written would otherwise
            // fail only after it, with every figure lost.
            string? jsonPath = parse.GetValue(json);
            if (jsonPath is not null && !StdPaths.IsStdio(jsonPath))
            {
                StdPaths.RequireNotDirectory(jsonPath, "--json file");
                string? folder = Path.GetDirectoryName(Path.GetFullPath(jsonPath));
                if (folder is not null && !Directory.Exists(folder))
                {
                    throw new CliException($"--json file '{jsonPath}': its folder '{folder}' does not exist", ExitCodes.BadInput);
                }
            }

            BenchSettings settings = parse.GetValue(quick) ? BenchSettings.Quick : BenchSettings.Full;
            if (parse.GetValue(sections) is { Length: > 0 } only)
            {
                settings = settings with { Sections = only.Aggregate(BenchSections.None, (all, one) => all | one) };
            }

            if (parse.GetValue(targets) is { Length: > 0 } names)
            {
                settings = settings with { Targets = names.ToHashSet(StringComparer.Ordinal) };
            }

            BenchReport report = await LoopbackBench.RunAsync(settings, Console.Error, cancellationToken);
            report.Optimized = optimized;

            // The JSON first: a table that cannot be written (stdout closed) then loses no figures.
            // '-' is stdout, as wherever the tool names a file; no file named '-' is ever made.
            bool jsonToStdout = jsonPath is not null && StdPaths.IsStdio(jsonPath);
            if (jsonToStdout)
            {
                WriteJsonToStdout(report);
            }
            CliException? jsonFailed = null;
            if (!jsonToStdout && jsonPath is not null)
            {
                jsonFailed = WriteJsonFile(report, jsonPath);
            }

            Console.Error.WriteLine();
            if (jsonToStdout)
            {
                report.WriteTable(Console.Error, includeTargets: parse.GetValue(checkTargets));
            }
            else
            {
                using var table = new StdoutReport("the benchmark table");
                report.WriteTable(table, includeTargets: parse.GetValue(checkTargets));
            }

            // After the table, which still holds the figures the file could not.
            return jsonFailed is null ? ExitCodes.Success : throw jsonFailed;
        }));
        return command;
    }

    /// <summary>
    /// Writes the figures as JSON to a new file beside <paramref name="path"/>, renamed over it once
    /// whole: a disk that fills up leaves the old file, or none, never an empty or cut one. Returns the
    /// failure to report (exit 1: the disk, not the user's input) instead of throwing, so the table
    /// is still written.
    /// </summary>
    private static CliException? WriteJsonFile(BenchReport report, string path)
    {
        string draft = $"{Path.GetFullPath(path)}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var file = new FileStream(draft, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                report.WriteJson(file);
                file.Flush(flushToDisk: true);
            }

            File.Move(draft, path, overwrite: true);
            Console.Error.WriteLine($"ossuary: wrote {path}");
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            try
            {
                File.Delete(draft);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                // The failure to write is the one to report.
            }

            // A folder not ours to write is the path's fault; anything else (a full disk) is not.
            return new CliException(
                $"cannot write the benchmark figures to '{path}' ({ex.Message}); they are in the table only",
                ex is UnauthorizedAccessException ? ExitCodes.BadInput : ExitCodes.Failure);
        }
    }

    /// <summary>Writes the figures as JSON to stdout; exit 1 naming stdout if they could not be.</summary>
    private static void WriteJsonToStdout(BenchReport report)
    {
        try
        {
            using Stream stdout = StdPaths.OpenStdout();
            report.WriteJson(stdout);
            stdout.Flush();
        }
        catch (IOException ex)
        {
            throw new CliException($"cannot write the benchmark figures to standard output: {ex.Message}");
        }
    }

    /// <summary>False for an assembly compiled without optimizations (a Debug build).</summary>
    internal static bool IsOptimized(Assembly assembly) =>
        assembly.GetCustomAttribute<DebuggableAttribute>() is not { IsJITOptimizerDisabled: true };
}
