using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Tests.Interop.Original.Differential;

/// <summary>
/// Runs generated scenarios through the original and through our sessions, compares them and
/// tallies the verdicts by kind. Scenarios run on two workers (one short-lived process each).
/// </summary>
internal sealed partial class DifferentialRun
{
    public const string ReproTest = "FullyQualifiedName~Interop.Original.Differential.DifferentialTests.GeneratedScenariosMatchTheOriginal";

    private readonly ConcurrentDictionary<string, int> _kinds = new();
    private readonly ConcurrentDictionary<string, int> _oracles = new();
    private readonly ConcurrentQueue<string> _failures = new();
    private readonly ConcurrentDictionary<string, ulong> _examples = new();
    private readonly ConcurrentDictionary<string, int> _panicSites = new();
    private int _ran;

    public int Ran => _ran;

    public int Failed => _failures.Count;

    public IReadOnlyCollection<string> Failures => _failures;

    public static string Repro(ulong scenarioSeed) =>
        $"OSSUARY_DIFF_SCENARIO={scenarioSeed} dotnet test tests/Ossuary.Pipelines.Tests -c Release --filter \"{ReproTest}\"";

    /// <summary>How many comparisons ended with each verdict kind.</summary>
    public IReadOnlyDictionary<string, int> Kinds => _kinds;

    public void RunAll(IEnumerable<ulong> scenarioSeeds, int workers = 2) =>
        Parallel.ForEach(scenarioSeeds, new ParallelOptions { MaxDegreeOfParallelism = workers }, seed => RunOne(seed));

    public void RunAll(IEnumerable<DiffScenario> scenarios, int workers = 2) =>
        Parallel.ForEach(scenarios, new ParallelOptions { MaxDegreeOfParallelism = workers }, scenario => RunScenario(scenario));

    /// <summary>Runs one scenario; returns its verdicts (the main comparison, and the refusal check where it applies).</summary>
    public List<DiffVerdict> RunOne(ulong seed, StringBuilder? log = null) => RunScenario(ScenarioGenerator.Generate(seed), log);

    /// <summary>Runs a scenario made by hand (or a generated one changed); as <see cref="RunOne"/>.</summary>
    public List<DiffVerdict> RunScenario(DiffScenario scenario, StringBuilder? log = null)
    {
        ulong seed = scenario.Seed;
        var verdicts = new List<DiffVerdict>();
        OracleRun original = OriginalOracle.Run(scenario);
        _oracles.AddOrUpdate(original.Oracle, 1, (_, n) => n + 1);
        if (original.Panic is not null)
        {
            // "panicked at ossuary/src/comm.rs:276:31: range end index ..." -> "comm.rs:276"
            Match site = PanicSite().Match(original.Panic);
            _panicSites.AddOrUpdate(site.Success ? site.Groups[1].Value : "?", 1, (_, n) => n + 1);
        }

        DiffVerdict verdict;
        OurLockstepPair? ours = null;
        try
        {
            ours = new OurLockstepPair(scenario).Run();
            verdict = DiffComparison.Compare(original, ours.Lines, ours.Markers);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            verdict = new DiffVerdict(DiffVerdict.OurException, true, e.ToString());
        }

        verdicts.Add(verdict);
        DiffVerdict? refusal = CheckRefusalAtOnce(scenario, original);
        if (refusal is not null)
        {
            verdicts.Add(refusal);
        }

        foreach (DiffVerdict v in verdicts)
        {
            _kinds.AddOrUpdate(v.Kind, 1, (_, n) => n + 1);
            _examples.TryAdd(v.Kind, seed);
            if (v.Failed)
            {
                _failures.Enqueue($"{v.Kind}: {scenario.Describe()}\n  oracle: {original.Oracle} ({original.Command})\n  repro: {Repro(seed)}\n{v.Detail}");
            }
        }

        if (log is not null)
        {
            log.AppendLine(scenario.Describe()).AppendLine($"oracle: {original.Oracle}: {original.Command}");
            log.AppendLine("--- original").AppendJoin('\n', original.Lines).AppendLine();
            if (original.Panic is not null)
            {
                log.AppendLine($"PANIC {original.Panic}");
            }

            log.AppendLine("--- ours").AppendJoin('\n', ours?.Lines ?? []).AppendLine();
            foreach (DiffVerdict v in verdicts)
            {
                log.AppendLine($"verdict: {v.Kind}{(v.Failed ? " (FAILED)" : "")} {v.Detail}");
            }
        }

        Interlocked.Increment(ref _ran);
        return verdicts;
    }

    /// <summary>
    /// For a refused client in a scenario without faults: our default (refuse at once) must write
    /// Disconnect (error) after the ServerHandshake, end the server with InvalidKey and fail the
    /// client, as the original's client fails after its five resets.
    /// </summary>
    private static DiffVerdict? CheckRefusalAtOnce(DiffScenario scenario, OracleRun original)
    {
        string? clientKey = scenario.ClientSecret is null ? null : ScenarioGenerator.PublicKeyOf(scenario.ClientSecret);
        string? serverKey = scenario.ServerSecret is null ? null : ScenarioGenerator.PublicKeyOf(scenario.ServerSecret);
        bool clientGoesOn = scenario.Tofu || (serverKey is not null && scenario.ClientAuthorized.Contains(serverKey));
        if (scenario.Faults.Length > 0 || !scenario.ClientRefused(clientKey) || !clientGoesOn || original.Panic is not null)
        {
            return null;
        }

        var ours = new OurLockstepPair(scenario, refuseAtOnce: true).Run();
        string[] serverPackets = [.. ours.Lines.Where(l => l.StartsWith("PKT server ", StringComparison.Ordinal)).Select(l => l[11..])];
        string originalEnd = DiffComparison.Normalize(original.Lines.Last(l => l.StartsWith("END ", StringComparison.Ordinal)));
        string ourEnd = DiffComparison.Normalize(ours.Lines[^1]);
        bool ok = serverPackets.Length == 2
            && serverPackets[0].Substring(8, 4) == "0002"
            && serverPackets[1].Substring(8, 4) == "0010" && serverPackets[1].Substring(20, 2) == "01"
            && ours.Server.LastError == OssuaryErrorReason.InvalidKey
            && ourEnd.StartsWith("END client=Err ", StringComparison.Ordinal)
            && originalEnd.StartsWith("END client=Err ", StringComparison.Ordinal);
        return new DiffVerdict(KnownDifferences.RefuseUnauthorizedClientsAtOnce, !ok,
            ok ? "" : $"expected ServerHandshake then Disconnect(error), server InvalidKey, both clients failed; ours: server wrote [{string.Join(", ", serverPackets.Select(p => p[..Math.Min(24, p.Length)]))}], server {ours.Server.LastError}, {ourEnd}; original {originalEnd}");
    }

    /// <summary>One scenario seed per verdict kind, to look at one with OSSUARY_DIFF_SCENARIO.</summary>
    public string Examples() =>
        string.Join(", ", _examples.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => string.Create(CultureInfo.InvariantCulture, $"{k.Key} {k.Value}")));

    /// <summary>Where the original panicked, with counts ("comm.rs:276 x3").</summary>
    public string PanicSites() =>
        _panicSites.IsEmpty ? "none" : string.Join(", ", _panicSites.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => string.Create(CultureInfo.InvariantCulture, $"{k.Key} x{k.Value}")));

    [GeneratedRegex(@"panicked at (?:[^\s:]*/)?([\w.-]+:\d+)")]
    private static partial Regex PanicSite();

    /// <summary>"differential: N scenarios (...), M comparisons: identical a, ...; unexplained differences: u".</summary>
    public string Summary()
    {
        string oracles = string.Join(", ", _oracles.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => $"{k.Value} by {k.Key}"));
        var kinds = _kinds.OrderBy(k => k.Key == DiffVerdict.Identical ? 0 : 1).ThenBy(k => k.Key, StringComparer.Ordinal)
            .Where(k => k.Key is not (DiffVerdict.Unexplained or DiffVerdict.OurException));
        int unexplained = _kinds.GetValueOrDefault(DiffVerdict.Unexplained) + _kinds.GetValueOrDefault(DiffVerdict.OurException);
        return string.Create(CultureInfo.InvariantCulture,
            $"differential vs original: {_ran} scenarios ({oracles}), {_kinds.Values.Sum()} comparisons: {string.Join(", ", kinds.Select(k => $"{k.Key} {k.Value}"))}; unexplained differences: {unexplained}");
    }
}
