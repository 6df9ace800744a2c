using Ossuary.Pipelines.Loopback.Report;

namespace Ossuary.Pipelines.Loopback.Measurements;

/// <summary>
/// The handshake ceilings and ossuary's ratios to them and to SslStream, computed round by round from
/// the rates of the same round, then the median kept. A round of every target takes about 2.5 s in
/// <c>--quick</c> mode, and a quotient of two medians can take its two rates from rounds seconds
/// apart: so taken, the two ratios to the ceilings moved by -17 % / +22 % across three quick runs
/// (benchmarks/README.md, round twenty-four) where the other ratios held within 5 %.
/// </summary>
internal static class HandshakeCeilings
{
    /// <summary>Adds every ceiling and ratio whose rates <paramref name="report"/> holds; skips the rest.</summary>
    public static void Add(BenchReport report, int parallelism)
    {
        ArgumentNullException.ThrowIfNull(report);
        string parallel = $"handshakes.parallel{parallelism}";

        // A connection costs at least TCP's own connect/close plus the handshake's crypto: with
        // every core busy (the parallel runs), no adapter can beat the sum of the two costs.
        Ceiling(report, "ossuary.handshakes.ceiling", $"tcp.{parallel}", "ossuary.handshakes.crypto-bound.parallel");

        // The same one connection at a time: TCP's sequential connect/close, then both sides' crypto on one thread.
        Ceiling(report, "ossuary.handshakes.ceiling.sequential", "tcp.handshakes.sequential", "ossuary.handshakes.crypto-bound");

        // The protocol's own packets on top: three handshake packets, and Disconnect answered with
        // a Reset, are four more sends (and wake-ups) a connection than the tcp target's ping.
        Ceiling(report, "ossuary.handshakes.ceiling.packets", $"tcp-packets.{parallel}", "ossuary.handshakes.crypto-bound.parallel");
        Ceiling(report, "ossuary.handshakes.ceiling.packets.sequential", "tcp-packets.handshakes.sequential", "ossuary.handshakes.crypto-bound");

        // The same packets into Kestrel: what its socket transport adds for them (the ossuary target's server is Kestrel's).
        Ceiling(report, "ossuary.handshakes.ceiling.kestrel-packets", $"tcp-packets-kestrel.{parallel}", "ossuary.handshakes.crypto-bound.parallel");
        Ceiling(report, "ossuary.handshakes.ceiling.kestrel-packets.sequential", "tcp-packets-kestrel.handshakes.sequential", "ossuary.handshakes.crypto-bound");

        Ratio(report, "ossuary.handshakes.sequential", "ossuary.handshakes.ceiling.sequential", "vs-ceiling");
        Ratio(report, $"ossuary.{parallel}", "ossuary.handshakes.ceiling", "vs-ceiling");
        Ratio(report, "ossuary.handshakes.sequential", "ossuary.handshakes.ceiling.packets.sequential", "vs-ceiling.packets");
        Ratio(report, $"ossuary.{parallel}", "ossuary.handshakes.ceiling.packets", "vs-ceiling.packets");
        Ratio(report, "ossuary.handshakes.sequential", "ossuary.handshakes.ceiling.kestrel-packets.sequential", "vs-ceiling.kestrel-packets");
        Ratio(report, $"ossuary.{parallel}", "ossuary.handshakes.ceiling.kestrel-packets", "vs-ceiling.kestrel-packets");

        // SslStream's rates too: over nine quick runs (round twenty-five) the parallel ratio, paired, stayed
        // within 2.80-3.11 where the quotient of medians ranged 2.80-3.48 (sequential: 2.77-3.44 against 2.77-3.51).
        Ratio(report, "ossuary.handshakes.sequential", "tls13.handshakes.sequential", "vs-tls13");
        Ratio(report, $"ossuary.{parallel}", $"tls13.{parallel}", "vs-tls13");
    }

    private static void Ceiling(BenchReport report, string name, string transport, string crypto)
    {
        if (Rounds.Paired(report.RoundsOf(transport), report.RoundsOf(crypto), (t, c) => 1 / (1 / t + 1 / c)) is Rounds ceiling)
        {
            report.Add(name, ceiling, "handshakes/s");
        }
    }

    private static void Ratio(BenchReport report, string figure, string baseline, string suffix)
    {
        if (Rounds.Paired(report.RoundsOf(figure), report.RoundsOf(baseline), (f, b) => f / b) is Rounds ratio)
        {
            report.Add($"{figure}.{suffix}", ratio, "x");
        }
    }
}
