using System.Net;
using Ossuary.Pipelines;

namespace Ossuary.Samples.Telemetry.Load;

/// <summary>What the load generator simulates.</summary>
public sealed class LoadOptions
{
    /// <summary>The telemetry server.</summary>
    public required EndPoint Server { get; init; }

    /// <summary>The server's key, which every device pins.</summary>
    public required OssuaryPublicKey ServerKey { get; init; }

    /// <summary>One identity per simulated device. Not disposed by the generator.</summary>
    public required IReadOnlyList<OssuaryIdentity> Devices { get; init; }

    /// <summary>Readings each device sends before it disconnects.</summary>
    public int ReadingsPerDevice { get; init; } = 50;

    /// <summary>
    /// The sequence number of each device's first reading; the next ones count up from it. A device
    /// that reconnects continues where it stopped, so the server sees gaps (loss) and repeats (resends).
    /// </summary>
    public long FirstSequence { get; init; } = 1;

    /// <summary>
    /// When set, a device's reading <c>seq</c> is stamped this time plus <c>seq</c> milliseconds, so that a run
    /// that starts below where an earlier one with the same origin stopped resends the same readings (which the
    /// store keeps once). Null: each reading is stamped when it is sent, and a run that starts below an
    /// earlier one sends new readings under reused numbers, as a rebooted device does (the store keeps both).
    /// </summary>
    public DateTimeOffset? TimeOrigin { get; init; }

    /// <summary>Pause between two readings of a device; zero sends them back to back.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromMilliseconds(10);
}
