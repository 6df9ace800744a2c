using System.Diagnostics;
using System.Globalization;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Interop.Original.Differential;

/// <summary>What the original printed for one scenario.</summary>
/// <param name="Lines">ROUND, EVT, PKT and END lines (for ref-peer pair: its stderr's ROUND/EVT lines, then its stdout).</param>
/// <param name="Stderr">What it wrote to stderr (ref-peer's EVT lines are also in <paramref name="Lines"/>).</param>
/// <param name="Panic">The library's panic message when it panicked (the run then stops where it panicked).</param>
internal sealed record OracleRun(string Oracle, IReadOnlyList<string> Lines, string? Panic, int ExitCode, string Stderr, string Command);

/// <summary>Which program plays the original.</summary>
internal enum OracleChoice
{
    /// <summary>ref-peer pair for the scenarios it can run (<see cref="DiffScenario.UsesRefPeer"/>), else the C driver.</summary>
    Auto,

    /// <summary>ref-peer pair (faults are not possible).</summary>
    RefPeerPair,

    /// <summary>tests/differential/original_pair.c (a clean close is not possible).</summary>
    Driver,
}

/// <summary>
/// Runs a scenario through the original: <c>ref-peer pair</c> (../shared/interop) when the
/// scenario has no faults and closes cleanly, otherwise tests/differential/original_pair.c,
/// compiled once per test process with gcc against the original's libossuary.so. Both get the
/// scenario's draws through <c>OSSUARY_REF_SEED</c>; one process per scenario, since the
/// original's generator is process-wide.
/// </summary>
internal static class OriginalOracle
{
    private static readonly Lazy<string> Driver = new(CompileDriver, LazyThreadSafetyMode.ExecutionAndPublication);

    public static string InteropDirectory => Path.Combine(RepositoryRoot, "..", "shared", "interop", "libossuary-0.5.2");

    public static string RefPeer => Path.Combine(InteropDirectory, "ref-peer");

    public static string DriverPath => Driver.Value;

    public static string RepositoryRoot { get; } = RepositoryPaths.Root();

    /// <summary>Runs <paramref name="scenario"/> through the original; <paramref name="oracle"/> overrides the choice (tests of the harness).</summary>
    public static OracleRun Run(DiffScenario scenario, OracleChoice oracle = OracleChoice.Auto, IReadOnlyDictionary<string, string>? environment = null)
    {
        bool refPeer = oracle == OracleChoice.RefPeerPair || (oracle == OracleChoice.Auto && scenario.UsesRefPeer);
        var arguments = new List<string>();
        string file;
        if (refPeer)
        {
            file = RefPeer;
            arguments.Add("pair");
            arguments.AddRange(scenario.Arguments());
            arguments.AddRange(["--rounds", "400"]);
        }
        else
        {
            file = DriverPath;
            arguments.AddRange(scenario.Arguments().Where(a => a != "--client-disconnect"));
        }

        (int exit, string stdout, string stderr) = Execute(file, arguments, scenario.DrawSeed, environment);
        string[] outLines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] errLines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        List<string> lines = refPeer
            ? [.. errLines.Where(l => l.StartsWith("ROUND ", StringComparison.Ordinal) || l.StartsWith("EVT ", StringComparison.Ordinal)), .. outLines]
            : [.. outLines];
        int panicAt = Array.FindIndex(errLines, l => l.Contains("panicked at", StringComparison.Ordinal));
        string? panic = panicAt < 0 ? null : string.Join(' ', errLines.Skip(panicAt).Take(2)).Trim();
        if (panic is null && (exit != 0 || !lines.Any(l => l.StartsWith("END ", StringComparison.Ordinal))))
        {
            throw new InvalidOperationException($"The original's {(refPeer ? "ref-peer pair" : "driver")} failed (exit {exit}) for {scenario.Describe()}:\n{stderr}");
        }

        return new OracleRun(refPeer ? "ref-peer pair" : "original_pair", lines, panic, exit, stderr, $"{Path.GetFileName(file)} {string.Join(' ', arguments.Select(a => a.Length > 40 ? a[..16] + "…" : a))}");
    }

    private static (int Exit, string Stdout, string Stderr) Execute(string file, IEnumerable<string> arguments, ulong seed, IReadOnlyDictionary<string, string>? environment)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in arguments)
        {
            start.ArgumentList.Add(a);
        }

        foreach (string name in new[] { "OSSUARY_REF_DRAWS_FILE", "OSSUARY_REF_TRACE", "OSSUARY_REF_TRACE_DRAWS", "LD_LIBRARY_PATH" })
        {
            start.Environment.Remove(name);
        }

        start.Environment["OSSUARY_REF_SEED"] = seed.ToString(CultureInfo.InvariantCulture);
        start.Environment["RUST_BACKTRACE"] = "0";
        foreach ((string name, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"Cannot start {file}.");
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill();
            throw new TimeoutException($"{file} did not finish within 60 s (hang guard).");
        }

        return (process.ExitCode, stdout, stderr.GetAwaiter().GetResult());
    }

    private static string CompileDriver()
    {
        string source = Path.Combine(RepositoryRoot, "tests", "differential", "original_pair.c");
        string directory = Path.Combine(AppContext.BaseDirectory, "differential", Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(directory);
        string output = Path.Combine(directory, "original_pair");
        string library = Path.GetFullPath(InteropDirectory);
        var start = new ProcessStartInfo("gcc")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { "-Wall", "-Wextra", "-Werror", "-O1", "-o", output, source, "-I" + library, "-L" + library, "-lossuary", "-Wl,-rpath," + library })
        {
            start.ArgumentList.Add(a);
        }

        using Process gcc = Process.Start(start) ?? throw new InvalidOperationException("Cannot start gcc.");
        Task<string> errors = gcc.StandardError.ReadToEndAsync();
        string messages = gcc.StandardOutput.ReadToEnd();
        gcc.WaitForExit();
        if (gcc.ExitCode != 0)
        {
            throw new InvalidOperationException($"gcc could not build the original's driver {source}:\n{messages}{errors.GetAwaiter().GetResult()}");
        }

        return output;
    }
}
