using System.Globalization;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// tests/native/bench.c, the C library benchmark behind benchmarks/native-bench.sh, built against
/// this project's libossuary.so and against the original's. The times it prints are benchmarks and
/// are never asserted; what is checked is that it runs to the end against both libraries, prints
/// every figure, and that memory per live connection (not a time) stays within the original's.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed partial class NativeBenchTests(NativeLibraryFixture native, ITestOutputHelper output)
{
    private static readonly string[] FigureNames =
    [
        "first_create", "first_create.cpu", "second_create", "rss_per_connection",
        "messages.1k", "messages.1k.cpu", "messages.16k", "messages.16k.cpu", "handshakes", "handshakes.cpu",
    ];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TheSmallModeRunsToTheEndAndPrintsEveryFigure(bool original)
    {
        Dictionary<string, double> figures = await RunAsync(original, "--connections", "200", "--seconds", "0.05");

        Assert.Equal(FigureNames, figures.Keys);
        Assert.All(FigureNames.Where(name => name != "rss_per_connection"), name => Assert.True(figures[name] > 0, $"{name} = {figures[name]}"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TheFirstCreateModePrintsTheFirstThreeFiguresOnly(bool original)
    {
        // benchmarks/native-bench.sh starts the program this way many times for its medians.
        Dictionary<string, double> figures = await RunAsync(original, "--only", "first_create");

        Assert.Equal(FigureNames[..3], figures.Keys);
    }

    [Fact]
    public async Task ALiveConnectionHoldsNoMoreResidentMemoryThanTheOriginals()
    {
        // 4,000 connections: enough that a GC region or malloc arena appearing during the run
        // (a few MiB at once) moves the per-connection figure by about a kilobyte, not more.
        string[] arguments = ["--connections", "4000", "--seconds", "0.01"];
        double ours = (await RunAsync(false, arguments))["rss_per_connection"];
        double theirs = (await RunAsync(true, arguments))["rss_per_connection"];
        output.WriteLine($"resident memory per live connection: ours {ours:N0} B, the original's {theirs:N0} B");

        Assert.True(theirs > 0, $"the original measured {theirs} B per connection");
        Assert.True(ours <= theirs, $"ours {ours:N0} B per live connection, the original's {theirs:N0} B");
    }

    private async Task<Dictionary<string, double>> RunAsync(bool original, params string[] arguments)
    {
        string program = await native.ProgramAsync("bench", original ? NativeLink.Original : NativeLink.Shared);
        ProcessResult result = await NativeProcess.RunAsync(program, arguments, native.NeutralDirectory, TimeSpan.FromMinutes(5));
        output.WriteLine(result.ToString());
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.StartsWith("library ", result.Output, StringComparison.Ordinal);
        return FigureLine().Matches(result.Output).ToDictionary(m => m.Groups[1].Value, m => double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"^([a-z0-9_.]+) (-?[0-9.]+) \S+$", RegexOptions.Multiline)]
    private static partial Regex FigureLine();
}
