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
        Assert.Contains("Throughput, 16 KiB writes: >= 75 % of plain TCP: not measured", bench.Stdout, StringComparison.Ordinal);
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
}
