namespace Ossuary.Samples.Telemetry.Server;

/// <summary>
/// One parsed reading. <see cref="Sensor"/> points into the line it came from, so a reading lives
/// no longer than the buffer it was parsed from.
/// </summary>
public readonly ref struct Reading(ReadOnlySpan<byte> sensor, double value, long? timestampMs, long? sequence = null)
{
    /// <summary>The sensor's name, UTF-8 (<c>sensor=</c>); empty when the line names none.</summary>
    public ReadOnlySpan<byte> Sensor { get; } = sensor;

    /// <summary>The measured value (<c>value=</c>, required).</summary>
    public double Value { get; } = value;

    /// <summary>When the device took it, Unix milliseconds (<c>ts=</c>, optional).</summary>
    public long? TimestampMs { get; } = timestampMs;

    /// <summary>The device's sequence number for this reading (<c>seq=</c>, optional): consecutive per device, so gaps show loss and repeats show resends.</summary>
    public long? Sequence { get; } = sequence;
}
