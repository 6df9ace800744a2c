using System.Globalization;

namespace Ossuary.Samples.Telemetry.Storage;

/// <summary>
/// A short, stable hash of what a device measured (sensor, value, timestamp): the same on every node and
/// in every process, so that a resend (the same reading again) and a reused sequence number (another
/// reading under a number the device used before its reboot) can be told apart.
/// </summary>
public static class ReadingFingerprint
{
    /// <summary>16 lower-case hex characters (FNV-1a, 64 bits) of the reading's sensor, value and timestamp.</summary>
    public static string Of(in StoredReading reading)
    {
        // FNV-1a: no allocation, a few nanoseconds per reading on the publish path; it tells apart the
        // readings of one device under one number, it is not a defence against a forger (the device is authenticated).
        const ulong Prime = 1099511628211;
        ulong hash = 14695981039346656037;
        foreach (char c in reading.Sensor)
        {
            hash = (hash ^ c) * Prime;
        }

        hash = Mix(Mix(hash, (ulong)BitConverter.DoubleToInt64Bits(reading.Value)), (ulong)reading.TimestampMs);
        return hash.ToString("x16", CultureInfo.InvariantCulture);

        static ulong Mix(ulong hash, ulong word)
        {
            for (int shift = 0; shift < 64; shift += 8)
            {
                hash = (hash ^ ((word >> shift) & 0xff)) * Prime;
            }

            return hash;
        }
    }

    /// <summary>Whether <paramref name="a"/> and <paramref name="b"/> are the same measurement (a resend of it), whatever their origin.</summary>
    public static bool SameMeasurement(in StoredReading a, in StoredReading b) =>
        a.Sensor == b.Sensor && a.TimestampMs == b.TimestampMs
        && BitConverter.DoubleToInt64Bits(a.Value) == BitConverter.DoubleToInt64Bits(b.Value);
}
