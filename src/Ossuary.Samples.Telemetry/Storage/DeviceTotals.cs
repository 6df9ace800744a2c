namespace Ossuary.Samples.Telemetry.Storage;

/// <summary>One device's stored readings in total.</summary>
/// <param name="Device">The device's public key, 64 hex characters.</param>
/// <param name="Readings">Readings stored.</param>
/// <param name="Sequenced">Of those, readings that carried a sequence number.</param>
/// <param name="FirstSequence">The lowest sequence number stored (null if the device sent none).</param>
/// <param name="LastSequence">The highest sequence number stored.</param>
/// <param name="FirstTimestampMs">The earliest reading, Unix milliseconds.</param>
/// <param name="LastTimestampMs">The latest reading, Unix milliseconds.</param>
public sealed record DeviceTotals(string Device, long Readings, long Sequenced, long? FirstSequence, long? LastSequence, long FirstTimestampMs, long LastTimestampMs)
{
    /// <summary>
    /// Sequence numbers missing between the first and the last stored: readings lost on the way.
    /// (Stored readings are unique per sequence number, so this cannot go negative.)
    /// </summary>
    public long Missing => FirstSequence is long first && LastSequence is long last ? last - first + 1 - Sequenced : 0;
}
