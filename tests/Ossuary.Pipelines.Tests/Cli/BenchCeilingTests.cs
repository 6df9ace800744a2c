using Ossuary.Pipelines.Loopback;
using Ossuary.Pipelines.Loopback.Measurements;
using Ossuary.Pipelines.Loopback.Report;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// <c>ossuary bench</c>'s handshake ceilings and the ratios to them are taken round by round: each
/// round's ceiling from that round's TCP and crypto rates, each round's ratio from that round's
/// ossuary rate and ceiling, then the median. A quotient of medians mixed rounds and moved by up to
/// 22 % between runs of the same build.
/// </summary>
public sealed class BenchCeilingTests
{
    [Fact]
    public void TheCeilingAndTheRatioToItArePairedRoundByRound()
    {
        var report = new BenchReport("test machine", quick: true);

        // Round 2 is slow for every rate (a burst of load elsewhere); ossuary sits at half the ceiling in every round.
        Add(report, "ossuary.handshakes.crypto-bound", 4000, 1000, 4000);
        Add(report, "ossuary.handshakes.crypto-bound.parallel", 8000, 2000, 8000);
        Add(report, "tcp.handshakes.sequential", 4000, 1000, 4000);
        Add(report, "tcp.handshakes.parallel8", 8000, 2000, 8000);
        Add(report, "ossuary.handshakes.sequential", 1000, 250, 1000);
        Add(report, "ossuary.handshakes.parallel8", 2000, 500, 2000);
        Add(report, "tls13.handshakes.sequential", 250, 62.5, 250);
        Add(report, "tls13.handshakes.parallel8", 400, 125, 1000);

        HandshakeCeilings.Add(report, parallelism: 8);

        Assert.Equal([2000, 500, 2000], report.RoundsOf("ossuary.handshakes.ceiling.sequential")!);
        Assert.Equal([4000, 1000, 4000], report.RoundsOf("ossuary.handshakes.ceiling")!);
        Assert.Equal([0.5, 0.5, 0.5], report.RoundsOf("ossuary.handshakes.sequential.vs-ceiling")!);
        Assert.Equal(0.5, report["ossuary.handshakes.sequential.vs-ceiling"]);
        Assert.Equal(0.5, report["ossuary.handshakes.parallel8.vs-ceiling"]);
        Assert.Equal("x", report.Figures.Single(f => f.Name == "ossuary.handshakes.parallel8.vs-ceiling").Unit);

        // The target is checked on the paired ratio, and says so.
        TargetCheck sequential = report.Targets().Single(t => t.Target.StartsWith("Handshakes/s, sequential: >= 0.8x", StringComparison.Ordinal));
        Assert.False(sequential.Met);
        Assert.StartsWith("0.50x, the median of the rounds' own ratios (1,000 against 2,000 in medians", sequential.Measured, StringComparison.Ordinal);

        // So are the ratios to SslStream: 4x in each round sequentially, and 5x, 4x and 2x in parallel, whose
        // median is 4x (the quotient of the medians, 2,000 / 400, would say 5x).
        Assert.Equal([4.0, 4.0, 4.0], report.RoundsOf("ossuary.handshakes.sequential.vs-tls13")!);
        Assert.Equal([5.0, 4.0, 2.0], report.RoundsOf("ossuary.handshakes.parallel8.vs-tls13")!);
        TargetCheck[] versusTls = [.. report.Targets().Where(t => t.Target.EndsWith(">= 4x SslStream TLS 1.3", StringComparison.Ordinal))];
        Assert.Equal([true, true], versusTls.Select(t => t.Met));
        Assert.StartsWith("4.00x, the median of the rounds' own ratios (2,000 against 400 in medians", versusTls[1].Measured, StringComparison.Ordinal);
    }

    [Fact]
    public void APairedRatioKeepsTheRoundsTogetherWhereAQuotientOfMediansMixesThem()
    {
        var report = new BenchReport("test machine", quick: true);

        // Ossuary's median comes from round 3 and the ceiling's from round 1: 0.75 as a quotient of medians,
        // where each round's own ratio is 0.5, 0.5 and 1.0.
        Add(report, "ossuary.handshakes.crypto-bound", 2000, 1600, 1200);
        Add(report, "tcp.handshakes.sequential", 2000, 1600, 1200);
        Add(report, "ossuary.handshakes.sequential", 500, 400, 600);

        HandshakeCeilings.Add(report, parallelism: 8);

        Assert.Equal(800, report["ossuary.handshakes.ceiling.sequential"]);
        Assert.Equal(0.5, report["ossuary.handshakes.sequential.vs-ceiling"]);
        Assert.Equal(1.0, report.Figures.Single(f => f.Name == "ossuary.handshakes.sequential.vs-ceiling").Spread);

        // Nothing measured in parallel or for tcp-packets: those ceilings and ratios are left out, not made up.
        Assert.DoesNotContain(report.Figures, f => f.Name.Contains("parallel", StringComparison.Ordinal) || f.Name.Contains("packets", StringComparison.Ordinal));
    }

    [Fact]
    public void RatesFromDifferentNumbersOfRoundsAreNotPaired()
    {
        var report = new BenchReport("test machine", quick: true);
        Add(report, "ossuary.handshakes.crypto-bound", 2000, 1600, 1200);
        Add(report, "tcp.handshakes.sequential", 2000, 1600);

        HandshakeCeilings.Add(report, parallelism: 8);

        Assert.True(double.IsNaN(report["ossuary.handshakes.ceiling.sequential"]));
    }

    [Fact]
    public void QuickMeasuresIdleMemoryForTheTargetsFiguresUnlessTargetsAreNamed()
    {
        string[] all = ["tcp", "tcp-kestrel", "tls13-aesgcm", "tls13-kestrel", "ossuary", "ossuary-raw", "ossuary-64k"];

        Assert.Equal(["tcp", "tcp-kestrel", "tls13-aesgcm", "ossuary"], all.Where(BenchSettings.Quick.MeasuresIdle));
        Assert.Equal(all, all.Where(BenchSettings.Full.MeasuresIdle));
        BenchSettings named = BenchSettings.Quick with { Targets = new HashSet<string>(["ossuary-64k"]) };
        Assert.Equal(["ossuary-64k"], all.Where(named.MeasuresIdle));
    }

    private static void Add(BenchReport report, string name, params double[] rounds) => report.Add(name, Rounds.Of(rounds), "handshakes/s");
}
