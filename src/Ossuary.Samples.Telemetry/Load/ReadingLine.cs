using System.Globalization;
using System.IO.Pipelines;
using System.Text.Unicode;

namespace Ossuary.Samples.Telemetry.Load;

/// <summary>Writes one reading, <c>sensor=temp value=21.5 ts=1718000000000 seq=42\n</c>, straight into a pipe's memory.</summary>
public static class ReadingLine
{
    private const int MaxLength = 128;

    /// <summary>Appends a line to <paramref name="output"/> (not flushed).</summary>
    public static void Write(PipeWriter output, string sensor, double value, long timestampMs, long sequence)
    {
        Span<byte> span = output.GetSpan(MaxLength);
        if (!Utf8.TryWrite(span, CultureInfo.InvariantCulture, $"sensor={sensor} value={value:0.###} ts={timestampMs} seq={sequence}\n", out int written))
        {
            throw new ArgumentException($"A reading line must fit in {MaxLength} bytes.", nameof(sensor));
        }

        output.Advance(written);
    }
}
