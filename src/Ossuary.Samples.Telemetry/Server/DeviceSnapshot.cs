using Ossuary.Pipelines;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>One device's figures at one moment.</summary>
/// <param name="Key">The device's proven public key.</param>
/// <param name="Readings">Readings accepted so far.</param>
/// <param name="Rejected">Lines that were not readings.</param>
/// <param name="Rate">Readings per second between its first and latest reading (0 until it has two).</param>
/// <param name="LastSensor">The latest reading's sensor, or null before the first.</param>
/// <param name="LastValue">The latest reading's value.</param>
/// <param name="Connections">Connections open now.</param>
/// <param name="Sessions">Connections that have ended.</param>
/// <param name="Gaps">Sequence numbers skipped: readings the device numbered but the server has not received (one arriving late, within the last 1,024 numbers, fills its gap).</param>
/// <param name="Repeats">Readings that had arrived already under their sequence number (resends after a reconnect), or arrived more than 1,024 numbers late. Another reading under a number that arrived (a device that restarted its numbering) is not one: it is stored.</param>
public sealed record DeviceSnapshot(
    OssuaryPublicKey Key,
    long Readings,
    long Rejected,
    double Rate,
    string? LastSensor,
    double LastValue,
    int Connections,
    long Sessions,
    long Gaps = 0,
    long Repeats = 0)
{
    /// <summary>The first 12 hex characters of the key, enough to tell a fleet's devices apart.</summary>
    public string ShortKey => Key.ToString()[..12];
}
