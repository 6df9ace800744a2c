namespace Ossuary.Samples.Telemetry.Storage;

/// <summary>One reading as the store keeps it.</summary>
/// <param name="Device">The device's proven public key, 64 hex characters.</param>
/// <param name="Sequence">The device's sequence number (<c>seq=</c>), or null when it sent none.</param>
/// <param name="Sensor">The sensor's name.</param>
/// <param name="Value">The measured value.</param>
/// <param name="TimestampMs">When it was taken (the device's <c>ts=</c>, else when the server received it), Unix milliseconds.</param>
/// <param name="Origin">
/// For a reading without <paramref name="Sequence"/> that came through JetStream: the id the node published it
/// under (its name and count), so that a redelivery of it is a no-op in the store. Null otherwise. (The SQLite store
/// also writes <c>reused:&lt;seq&gt;:&lt;fingerprint&gt;</c> there for a reading under a number its device had used
/// for another reading, which it keeps without <paramref name="Sequence"/>.)
/// </param>
/// <param name="Untimed">
/// The device sent no <c>ts=</c>: <paramref name="TimestampMs"/> is when the server received the reading, which a
/// resend of it does not share, so <see cref="ReadingFingerprint"/> leaves it out.
/// </param>
public readonly record struct StoredReading(string Device, long? Sequence, string Sensor, double Value, long TimestampMs, string? Origin = null, bool Untimed = false);
