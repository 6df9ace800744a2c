using Ossuary.Pipelines.Loopback.Report;

namespace Ossuary.Pipelines.Loopback;

/// <summary>How long each measurement runs: the full run, or <c>--quick</c> (under a minute in all).</summary>
public sealed record BenchSettings
{
    /// <summary>The settings of <c>ossuary bench</c>.</summary>
    public static BenchSettings Full { get; } = new()
    {
        ThroughputRounds = 3,
        SmallWriteRounds = 3,
        ThroughputSeconds = 1.0,
        HandshakeRounds = 3,
        HandshakeSeconds = 0.7,
        CryptoSeconds = 0.7,
    };

    /// <summary>The settings of <c>ossuary bench --quick</c>.</summary>
    public static BenchSettings Quick { get; } = new()
    {
        IsQuick = true,
        ThroughputRounds = 5,
        SmallWriteRounds = 3,
        ThroughputSeconds = 0.3,
        SmallWriteSeconds = 0.2,
        HandshakeRounds = 5,
        HandshakeSeconds = 0.15,
        CryptoSeconds = 0.15,
        IdleTargets = new HashSet<string>(["tcp", "tcp-kestrel", BenchReport.Reference, "ossuary"]),
    };

    /// <summary>True for <c>--quick</c>.</summary>
    public bool IsQuick { get; init; }

    /// <summary>
    /// Throughput is measured this many times per target and write size, the targets taking turns
    /// (so a burst of load from elsewhere on the machine hits all of them alike); the median counts.
    /// </summary>
    public int ThroughputRounds { get; init; }

    /// <summary>
    /// Rounds of the 1 KiB-write throughput, which no target is set on: with <c>--quick</c>, fewer
    /// than the 16 KiB figures get, to keep the run under a minute.
    /// </summary>
    public int SmallWriteRounds { get; init; }

    /// <summary>About how long one throughput measurement runs.</summary>
    public double ThroughputSeconds { get; init; }

    /// <summary>
    /// About how long one 1 KiB-write measurement runs; <see cref="ThroughputSeconds"/> when not set. With
    /// <c>--quick</c>, shorter: no target is set on it, and the run must stay under a minute (59.5 s once without).
    /// </summary>
    public double? SmallWriteSeconds { get; init; }

    /// <summary>
    /// Handshakes are measured this many times per target, sequential and parallel, the targets
    /// taking turns as for throughput; the median counts and the spread is reported.
    /// </summary>
    public int HandshakeRounds { get; init; } = 1;

    /// <summary>How long connections are made one after another (and 8 at a time) per target and round.</summary>
    public double HandshakeSeconds { get; init; }

    /// <summary>How long the in-memory handshakes run for the crypto-only bound, per round (one thread, then one per core).</summary>
    public double CryptoSeconds { get; init; }

    /// <summary>Idle connections held open for the memory figures.</summary>
    public int IdleConnections { get; init; } = 1000;

    /// <summary>
    /// The idle memory figures are measured this many times per target, the targets taking turns;
    /// the median counts. One round moved by up to a third (SslStream's figure most), with what
    /// the other targets' servers release in the background while a target is measured.
    /// </summary>
    public int IdleRounds { get; init; } = 3;

    /// <summary>
    /// The targets whose idle memory is measured when <see cref="Targets"/> names none (null for all), so that <c>--quick</c> stays under a
    /// minute: it measures what the idle target is set on (ossuary and SslStream) and the floors the
    /// report explains it with (tcp, tcp-kestrel); opening and closing 1,000 connections three times
    /// took about a second a target, SslStream's longest.
    /// </summary>
    public IReadOnlySet<string>? IdleTargets { get; init; }

    /// <summary>Connections made at once in the parallel handshake measurement.</summary>
    public int Parallelism { get; init; } = 8;

    /// <summary>Which measurements to run (all by default; fewer while profiling one of them).</summary>
    public BenchSections Sections { get; init; } = BenchSections.All;

    /// <summary>Which targets to measure by name (<c>tcp</c>, <c>tls13-aesgcm</c>, <c>ossuary</c>, ...); null for all.</summary>
    public IReadOnlySet<string>? Targets { get; init; }

    internal bool Includes(string target) => Targets is null || Targets.Contains(target);

    /// <summary>Whether idle memory is measured for <paramref name="target"/>: a target named with <c>--targets</c> always is.</summary>
    internal bool MeasuresIdle(string target) => Targets is not null ? Targets.Contains(target) : IdleTargets?.Contains(target) != false;
}

/// <summary>The harness's measurements.</summary>
[Flags]
public enum BenchSections
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>Memory per idle connection.</summary>
    IdleMemory = 1,

    /// <summary>The crypto-only bound on handshakes.</summary>
    CryptoBound = 2,

    /// <summary>Handshakes per second over sockets.</summary>
    Handshakes = 4,

    /// <summary>Bulk throughput, 16 KiB and 1 KiB writes.</summary>
    Throughput = 8,

    /// <summary>Everything: what <c>ossuary bench</c> runs.</summary>
    All = IdleMemory | CryptoBound | Handshakes | Throughput,
}
