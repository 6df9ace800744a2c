using System.Text.Json;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// <c>ossuary bench</c>'s command line: a slice of the harness runs and reports what it measured.
/// The figures themselves are benchmarks, never asserted here.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliBenchTests : CliTestBase
{
    [Fact]
    public async Task SectionsAndJsonRunOnlyTheChosenMeasurementAndWriteItsFigures()
    {
        ToolResult bench = await RunAsync("bench", "--quick", "--sections", "CryptoBound", "--json", "bench.json");

        AssertSucceeds(bench);
        using JsonDocument json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "bench.json")));
        string[] names = [.. json.RootElement.GetProperty("figures").EnumerateArray().Select(f => f.GetProperty("name").GetString()!)];
        Assert.Equal(["ossuary.handshakes.crypto-bound", "ossuary.handshakes.crypto-bound.parallel", "ossuary.handshakes.crypto-bound.cpu"], names);
        Assert.All(json.RootElement.GetProperty("figures").EnumerateArray(), f => Assert.True(f.GetProperty("value").GetDouble() > 0));
        Assert.DoesNotContain("Targets (this run)", bench.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("Debug build", bench.Stderr, StringComparison.Ordinal);
        Assert.True(json.RootElement.GetProperty("optimized").GetBoolean());
    }

    [Fact]
    public async Task JsonToDashGoesToStdoutAndMakesNoFileNamedDash()
    {
        // README: wherever a file is named, '-' means stdin or stdout, and no file named '-' is ever made.
        ToolResult bench = await RunAsync("bench", "--quick", "--sections", "CryptoBound", "--json", "-");

        AssertSucceeds(bench);
        Assert.False(File.Exists(Path.Combine(Dir, "-")), "bench --json - made a file named '-'");
        using JsonDocument json = JsonDocument.Parse(bench.Stdout);
        Assert.Contains(json.RootElement.GetProperty("figures").EnumerateArray(), f => f.GetProperty("name").GetString() == "ossuary.handshakes.crypto-bound");
        Assert.Contains("| ossuary.handshakes.crypto-bound ", bench.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AJsonFileTheDiskHasNoRoomForIsAFailureThatKeepsTheTableAndLeavesNoCutFile()
    {
        // The disk is full when the run ends: the JSON cannot be written. That is not the user's bad
        // input (exit 2), an empty or cut file must not stand for the figures, and the table still has them.
        using var disk = Ossuary.Pipelines.Tests.Support.FullDisk.Mount();
        disk.Fill();
        string path = Path.Combine(disk.Path, "bench.json");

        ToolResult bench = await RunAsync("bench", "--quick", "--sections", "CryptoBound", "--json", path);

        AssertFails(bench, 1, "No space left on device", "bench.json");
        Assert.Contains("| ossuary.handshakes.crypto-bound ", bench.Stdout, StringComparison.Ordinal);
        Assert.Equal([".filler"], Directory.GetFileSystemEntries(disk.Path).Select(Path.GetFileName));
    }

    [Fact]
    public async Task AJsonPathThatIsADirectoryIsBadInputBeforeTheRun()
    {
        Directory.CreateDirectory(Path.Combine(Dir, "figures"));

        ToolResult bench = await RunAsync("bench", "--quick", "--sections", "CryptoBound", "--json", "figures");

        AssertFails(bench, 2, "'figures' is a directory");
        Assert.DoesNotContain("crypto-bound", bench.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AJsonPathInAMissingFolderIsBadInputBeforeTheRun()
    {
        ToolResult bench = await RunAsync("bench", "--quick", "--sections", "CryptoBound", "--json", "missing/figures.json");

        AssertFails(bench, 2, "missing");
        Assert.DoesNotContain("crypto-bound", bench.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckTargetsAddsTheTargetsAfterTheTable()
    {
        ToolResult bench = await RunAsync("bench", "--quick", "--sections", "CryptoBound", "--check-targets");

        AssertSucceeds(bench);
        int table = bench.Stdout.IndexOf("| ossuary.handshakes.crypto-bound ", StringComparison.Ordinal);
        int targets = bench.Stdout.IndexOf("Targets (this run):", StringComparison.Ordinal);
        Assert.True(table >= 0 && targets > table, bench.Stdout);
        Assert.Contains("[?] Throughput, 16 KiB writes: >= 1.3x Kestrel + UseHttps (tls13-kestrel): not measured", bench.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HandshakesAreMeasuredInRoundsWithTheirSpreadAndTheSequentialCeiling()
    {
        ToolResult bench = await RunAsync("bench", "--quick", "--sections", "CryptoBound", "Handshakes", "--targets", "tcp", "tls13-kestrel", "--json", "rounds.json");

        AssertSucceeds(bench);
        using JsonDocument json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "rounds.json")));
        Dictionary<string, JsonElement> figures = json.RootElement.GetProperty("figures").EnumerateArray().ToDictionary(f => f.GetProperty("name").GetString()!);
        Assert.Equal(
            [
                "ossuary.handshakes.crypto-bound", "ossuary.handshakes.crypto-bound.parallel", "ossuary.handshakes.crypto-bound.cpu",
                "tcp.handshakes.sequential", "tcp.handshakes.parallel8", "tcp.handshakes.cpu", "tcp.handshakes.alloc",
                "tls13-kestrel.handshakes.sequential", "tls13-kestrel.handshakes.parallel8", "tls13-kestrel.handshakes.cpu", "tls13-kestrel.handshakes.alloc",
                "ossuary.handshakes.ceiling", "ossuary.handshakes.ceiling.sequential",
            ],
            figures.Keys);

        // Five rounds with --quick, the targets taking turns: the log shows each target five times, and every
        // figure carries its spread and its five rounds in the order they ran (the crypto bound and the ceilings too).
        Assert.Equal(5, bench.Stderr.Split('\n').Count(line => line.TrimStart().StartsWith("tls13-kestrel ", StringComparison.Ordinal)));
        Assert.All(figures, f => Assert.True(f.Value.GetProperty("spread").GetDouble() >= 0, f.Key));
        Assert.All(figures, f => Assert.Equal(5, f.Value.GetProperty("rounds").GetArrayLength()));
        Assert.Matches(@"\|\s+Spread\s+\|", bench.Stdout);

        // Each round's sequential ceiling is made of that round's TCP and crypto rates.
        double[] ceilings = [.. RoundsOf(figures["tcp.handshakes.sequential"]).Zip(RoundsOf(figures["ossuary.handshakes.crypto-bound"]), (t, c) => 1 / (1 / t + 1 / c))];
        Assert.Equal(ceilings, RoundsOf(figures["ossuary.handshakes.ceiling.sequential"]), (a, b) => Math.Abs(a - b) <= Math.Max(a, b) * 1e-3);

        // The comparison a user reads first: one column per measured target, the README's rows.
        Assert.Matches(@"\| figure\s+\|\s+tcp \|\s+tls13-kestrel \|\n", bench.Stdout);
        Assert.Matches(@"\| handshakes/s, one after another\s+\| +[0-9.,]+ \| +[0-9.,]+ \|", bench.Stdout);

        // What a connection allocates, both ends, whole process: a Kestrel connection and SslStream's objects are kilobytes.
        Assert.Equal("bytes/connection", figures["tls13-kestrel.handshakes.alloc"].GetProperty("unit").GetString());
        Assert.InRange(figures["tls13-kestrel.handshakes.alloc"].GetProperty("value").GetDouble(), 1_000, 1_000_000);
        Assert.Matches(@"\| allocated per connection \(B\)\s+\| +[0-9.,]+ ", bench.Stdout);
        Assert.True(bench.Stdout.IndexOf("| handshakes/s, 8 at once", StringComparison.Ordinal) < bench.Stdout.IndexOf("| tcp.handshakes.sequential", StringComparison.Ordinal), bench.Stdout);
    }

    [Fact]
    public async Task TheCeilingsIncludeTheProtocolsPacketsAndTheRecordLayerAndTheTargetsSayWhatTheyAllow()
    {
        ToolResult bench = await RunAsync("bench", "--quick", "--sections", "CryptoBound", "Handshakes", "Throughput", "--targets", "tcp", "tcp-packets", "tcp-packets-kestrel", "ossuary", "--check-targets", "--json", "ceilings.json");

        AssertSucceeds(bench);
        using JsonDocument json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "ceilings.json")));
        Dictionary<string, double> figures = json.RootElement.GetProperty("figures").EnumerateArray().ToDictionary(f => f.GetProperty("name").GetString()!, f => f.GetProperty("value").GetDouble());
        Dictionary<string, double[]> rounds = json.RootElement.GetProperty("figures").EnumerateArray().Where(f => f.TryGetProperty("rounds", out _)).ToDictionary(f => f.GetProperty("name").GetString()!, RoundsOf);

        // tcp-packets measures handshakes only, and the ceiling with the protocol's packets is computed from it and
        // the crypto bound, round by round; so is ossuary's ratio to it, which the targets' limit lines quote.
        Assert.True(figures["tcp-packets.handshakes.cpu"] > 0);
        double[] packets = [.. rounds["tcp-packets.handshakes.parallel8"].Zip(rounds["ossuary.handshakes.crypto-bound.parallel"], (t, c) => 1 / (1 / t + 1 / c))];
        Assert.Equal(Median(packets), figures["ossuary.handshakes.ceiling.packets"], Median(packets) * 1e-3);
        double[] packetsSequential = [.. rounds["tcp-packets.handshakes.sequential"].Zip(rounds["ossuary.handshakes.crypto-bound"], (t, c) => 1 / (1 / t + 1 / c))];
        Assert.Equal(Median(packetsSequential), figures["ossuary.handshakes.ceiling.packets.sequential"], Median(packetsSequential) * 1e-3);
        double toPackets = Median([.. rounds["ossuary.handshakes.parallel8"].Zip(rounds["ossuary.handshakes.ceiling.packets"], (o, c) => o / c)]);
        Assert.Equal(toPackets, figures["ossuary.handshakes.parallel8.vs-ceiling.packets"], 2e-3);
        Assert.Contains($"measured {toPackets.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)}x the ceiling", bench.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"\| ossuary\.handshakes\.parallel8\.vs-ceiling\.packets \| +[0-9]+\.[0-9]{2} \| x ", bench.Stdout);
        Assert.DoesNotContain("tcp-packets.throughput", figures.Keys);

        // The throughput ceiling: the ossuary target's busy cores at plain TCP's CPU per MB plus the record layer's.
        Assert.InRange(figures["ossuary.cipher.cpu"], 1, 100_000);
        double ceiling = figures["ossuary.throughput"] * figures["ossuary.throughput.cpu"] / (figures["tcp.throughput.cpu"] + figures["ossuary.cipher.cpu"]);
        Assert.Equal(ceiling, figures["ossuary.throughput.ceiling"], ceiling * 1e-3);

        // Each target the ceilings bear on says what they allow, on screen and in the JSON; the others do not.
        JsonElement[] targets = [.. json.RootElement.GetProperty("targets").EnumerateArray()];
        string[] limited = [.. targets.Where(t => t.TryGetProperty("limit", out _)).Select(t => t.GetProperty("target").GetString()!)];
        Assert.Equal(["Handshakes/s, sequential: >= 0.8x the sequential ceiling (TCP connect + crypto, one after the other)", "Handshakes/s, 8 in parallel: >= 0.8x the ceiling (TCP connect + crypto, every core busy)"], limited);
        Assert.Matches(@"\n\s+ceiling with the protocol's packets \(tcp-packets \+ crypto\) = [0-9,]+, [0-9.]+x the baseline: (the ceiling allows the target|the target needs [0-9.]+x the ceiling); measured [0-9.]+x the ceiling\n", bench.Stdout);

        // The same packets into a real Kestrel: a second line under each, from tcp-packets-kestrel's rounds.
        Assert.Matches(@"measured [0-9.]+x the ceiling\n\s+the same packets into Kestrel \(tcp-packets-kestrel \+ crypto\) = [0-9,]+, [0-9.]+x the baseline: (the ceiling allows the target|the target needs [0-9.]+x the ceiling); measured [0-9.]+x the ceiling\n", bench.Stdout);
        double[] kestrelPackets = [.. rounds["tcp-packets-kestrel.handshakes.parallel8"].Zip(rounds["ossuary.handshakes.crypto-bound.parallel"], (t, c) => 1 / (1 / t + 1 / c))];
        Assert.Equal(Median(kestrelPackets), figures["ossuary.handshakes.ceiling.kestrel-packets"], Median(kestrelPackets) * 1e-3);
        Assert.DoesNotContain("tcp-packets-kestrel.throughput", figures.Keys);
    }

    [Fact]
    public async Task TargetsLimitTheIdleMemoryMeasurementToTheNamedTargets()
    {
        ToolResult bench = await RunAsync("bench", "--quick", "--sections", "IdleMemory", "--targets", "tcp", "ossuary-64k", "--json", "idle.json");

        AssertSucceeds(bench);
        using JsonDocument json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "idle.json")));
        string[] names = [.. json.RootElement.GetProperty("figures").EnumerateArray().Select(f => f.GetProperty("name").GetString()!)];
        Assert.Equal(["tcp.idle.managed", "tcp.idle.workingset", "ossuary-64k.idle.managed", "ossuary-64k.idle.workingset"], names);
    }

    [Fact]
    public async Task AnUnknownSectionIsAUsageError()
    {
        ToolResult bench = await RunAsync("bench", "--sections", "Everything");

        Assert.Equal(2, bench.ExitCode);
        Assert.Contains("Everything", bench.Stderr, StringComparison.Ordinal);
    }

    private static double[] RoundsOf(JsonElement figure) => [.. figure.GetProperty("rounds").EnumerateArray().Select(r => r.GetDouble())];

    private static double Median(double[] values) => values.Order().ElementAt(values.Length / 2);
}
