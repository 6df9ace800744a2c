using System.Globalization;
using System.Text;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Samples.Telemetry.JetStream;

/// <summary>
/// A reading on the wire between nodes: one UTF-8 line <c>device seq ts value sensor</c> (<c>seq</c> is
/// <c>-</c> when the device sent none). Sensor names never contain spaces: the device protocol splits on them.
/// </summary>
public static class ReadingMessage
{
    /// <summary>
    /// The header on a reading whose device sent no timestamp (<see cref="StoredReading.Untimed"/>): its
    /// <c>ts</c> is when a node received it, which consume's store must not take for part of the reading.
    /// </summary>
    public const string UntimedHeader = "Ossuary-Untimed";

    /// <summary>
    /// The JetStream message id: device key, sequence and <see cref="ReadingFingerprint"/>, so that a resent
    /// reading (the same one again) is dropped as a duplicate and another reading under a number the device
    /// reused (after a reboot) is not: with <c>device:seq</c> alone JetStream answered it "duplicate", the
    /// device was told it was stored, and it was not. Null without a sequence number.
    /// </summary>
    public static string? MessageId(in StoredReading reading) =>
        reading.Sequence is long seq ? string.Create(CultureInfo.InvariantCulture, $"{reading.Device}:{seq}:{ReadingFingerprint.Of(reading)}") : null;

    /// <summary>Encodes a reading.</summary>
    public static byte[] Encode(in StoredReading reading) => Encoding.UTF8.GetBytes(string.Create(
        CultureInfo.InvariantCulture,
        $"{reading.Device} {(reading.Sequence is long seq ? seq.ToString(CultureInfo.InvariantCulture) : "-")} {reading.TimestampMs} {reading.Value:R} {reading.Sensor}"));

    /// <summary>
    /// Decodes a reading delivered under <paramref name="messageId"/> (its <c>Nats-Msg-Id</c>). A reading
    /// without a sequence number keeps the id as its <see cref="StoredReading.Origin"/> (without the device
    /// key it starts with): a redelivery of it is then recognised by the store.
    /// </summary>
    /// <exception cref="FormatException">Not a reading message.</exception>
    public static StoredReading Decode(ReadOnlySpan<byte> data, string? messageId)
    {
        StoredReading reading = Decode(data);
        if (reading.Sequence is not null || string.IsNullOrEmpty(messageId))
        {
            return reading;
        }

        string origin = messageId.Length > reading.Device.Length + 1
            && messageId.StartsWith(reading.Device, StringComparison.Ordinal) && messageId[reading.Device.Length] == ':'
            ? messageId[(reading.Device.Length + 1)..]
            : messageId;
        return reading with { Origin = origin };
    }

    /// <summary>Decodes a reading.</summary>
    /// <exception cref="FormatException">Not a reading message.</exception>
    public static StoredReading Decode(ReadOnlySpan<byte> data)
    {
        string[] fields = Encoding.UTF8.GetString(data).Split(' ', 5);
        if (fields.Length != 5 || !IsDeviceKey(fields[0])
            || !long.TryParse(fields[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out long ts)
            || !double.TryParse(fields[3], NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
            || !double.IsFinite(value))
        {
            // Finite, as ReadingParser takes a device's value: the store refuses NaN, which failed the
            // batch and stopped consume, again at every restart while the message was in the stream.
            throw new FormatException("Not a reading message: expected 'device seq ts value sensor', the device a key in 64 lower-case hex characters, the value a finite number.");
        }

        long? sequence = fields[1] == "-" ? null
            : long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out long seq) ? seq
            : throw new FormatException("Not a reading message: bad sequence number.");
        return new StoredReading(fields[0], sequence, fields[4], value, ts);
    }

    /// <summary>
    /// A key as a node writes it (<see cref="Ossuary.Pipelines.OssuaryPublicKey.ToString()"/>). Any 64
    /// characters were stored as a device: an escape sequence, which <c>query</c> printed raw to the
    /// operator's terminal, or the key in capitals, a second device apart from the real one.
    /// </summary>
    private static bool IsDeviceKey(string field) => field.Length == 64 && field.All(char.IsAsciiHexDigitLower);
}
