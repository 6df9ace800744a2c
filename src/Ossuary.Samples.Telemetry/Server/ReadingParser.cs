using System.Buffers;
using System.Globalization;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>
/// The device protocol: newline-delimited readings of space-separated <c>key=value</c> fields,
/// e.g. <c>sensor=temp value=21.5 ts=1718000000000 seq=42</c>. <c>value</c> is required; <c>sensor</c>,
/// <c>ts</c> and <c>seq</c> are optional; unknown fields are ignored; a trailing CR is tolerated.
/// </summary>
public static class ReadingParser
{
    /// <summary>The longest line accepted, newline excluded. A device that sends a longer one is cut off.</summary>
    public const int MaxLineLength = 512;

    /// <summary>
    /// A line a device sends to learn what the server took: once every reading sent before it is stored,
    /// the server answers <c>ok N</c> (see <see cref="SyncAnswer"/>), N the readings this connection has
    /// given the store. A flush only says the bytes left the device; this answer is what tells them stored.
    /// </summary>
    public const string SyncLine = "sync";

    /// <summary>The start of the answer to <see cref="SyncLine"/>, followed by the count and a newline.</summary>
    public const string SyncAnswer = "ok ";

    /// <summary>True for a <see cref="SyncLine"/> (a trailing CR tolerated).</summary>
    public static bool IsSync(in ReadOnlySequence<byte> line)
    {
        if (line.Length is not (4 or 5))
        {
            return false;
        }

        Span<byte> text = stackalloc byte[5];
        text = text[..(int)line.Length];
        line.CopyTo(text);
        if (text.EndsWith((byte)'\r'))
        {
            text = text[..^1];
        }

        return text.SequenceEqual("sync"u8);
    }

    /// <summary>Takes the first complete line (without its newline) off the front of <paramref name="buffer"/>.</summary>
    public static bool TryReadLine(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> line)
    {
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryReadTo(out line, (byte)'\n'))
        {
            return false;
        }

        buffer = buffer.Slice(reader.Position);
        return true;
    }

    /// <summary>
    /// Parses one line. A line split across buffer segments is first copied into <paramref name="scratch"/>
    /// (at least <see cref="MaxLineLength"/> bytes), which the reading then points into.
    /// </summary>
    public static bool TryParse(in ReadOnlySequence<byte> line, Span<byte> scratch, out Reading reading)
    {
        reading = default;
        if (line.Length > MaxLineLength)
        {
            return false;
        }

        ReadOnlySpan<byte> text = line.IsSingleSegment ? line.FirstSpan : scratch[..(int)line.Length];
        if (!line.IsSingleSegment)
        {
            line.CopyTo(scratch);
        }

        return TryParse(text, out reading);
    }

    /// <summary>Parses one line held in a single span.</summary>
    public static bool TryParse(ReadOnlySpan<byte> text, out Reading reading)
    {
        reading = default;
        if (text.EndsWith((byte)'\r'))
        {
            text = text[..^1];
        }

        ReadOnlySpan<byte> sensor = default;
        double? value = null;
        long? timestamp = null;
        long? sequence = null;
        foreach (Range range in text.Split((byte)' '))
        {
            ReadOnlySpan<byte> field = text[range];
            if (field.IsEmpty)
            {
                continue;
            }

            int equals = field.IndexOf((byte)'=');
            if (equals <= 0)
            {
                return false;
            }

            ReadOnlySpan<byte> key = field[..equals];
            ReadOnlySpan<byte> content = field[(equals + 1)..];
            if (key.SequenceEqual("sensor"u8))
            {
                sensor = content;
            }
            else if (key.SequenceEqual("value"u8))
            {
                if (!double.TryParse(content, NumberStyles.Float, CultureInfo.InvariantCulture, out double number) || !double.IsFinite(number))
                {
                    return false;
                }

                value = number;
            }
            else if (key.SequenceEqual("ts"u8))
            {
                if (!long.TryParse(content, NumberStyles.None, CultureInfo.InvariantCulture, out long ms))
                {
                    return false;
                }

                timestamp = ms;
            }
            else if (key.SequenceEqual("seq"u8))
            {
                if (!long.TryParse(content, NumberStyles.None, CultureInfo.InvariantCulture, out long seq))
                {
                    return false;
                }

                sequence = seq;
            }
        }

        if (value is null)
        {
            return false;
        }

        reading = new Reading(sensor, value.Value, timestamp, sequence);
        return true;
    }
}
