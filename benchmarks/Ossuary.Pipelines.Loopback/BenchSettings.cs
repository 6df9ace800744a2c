namespace Ossuary.Pipelines.Loopback;

/// <summary>How long each measurement runs: the full run, or <c>--quick</c> (under a minute in all).</summary>
public sealed record BenchSettings
{
    /// <summary>The settings of <c>ossuary bench</c>.</summary>
    public static BenchSettings Full { get; } = new()
    {
        ThroughputRounds = 3,
        ThroughputSeconds = 1.0,
        HandshakeSeconds = 2.0,
        CryptoSeconds = 2.0,
    };

    /// <summary>The settings of <c>ossuary bench --quick</c>.</summary>
    public static BenchSettings Quick { get; } = new()
    {
        IsQuick = true,
        ThroughputRounds = 1,
        ThroughputSeconds = 0.4,
        HandshakeSeconds = 0.6,
        CryptoSeconds = 0.6,
    };

    /// <summary>True for <c>--quick</c>.</summary>
    public bool IsQuick { get; init; }

    /// <summary>
    /// Throughput is measured this many times per target and write size, the targets taking turns
    /// (so a burst of load from elsewhere on the machine hits all of them alike); the median counts.
    /// </summary>
    public int ThroughputRounds { get; init; }

    /// <summary>About how long one throughput measurement runs.</summary>
    public double ThroughputSeconds { get; init; }

    /// <summary>How long connections are made one after another (and 8 at a time) per target.</summary>
    public double HandshakeSeconds { get; init; }

    /// <summary>How long the in-memory handshakes run for the crypto-only bound.</summary>
    public double CryptoSeconds { get; init; }

    /// <summary>Idle connections held open for the memory figures.</summary>
    public int IdleConnections { get; init; } = 1000;

    /// <summary>Connections made at once in the parallel handshake measurement.</summary>
    public int Parallelism { get; init; } = 8;
}
