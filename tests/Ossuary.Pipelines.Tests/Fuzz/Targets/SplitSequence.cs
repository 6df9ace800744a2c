using System.Buffers;

namespace Ossuary.Pipelines.Fuzzing;

/// <summary>Multi-segment sequences cut where the fuzz input says, the way a pipe hands over its buffers.</summary>
internal static class SplitSequence
{
    /// <summary>
    /// Cuts <paramref name="data"/> into segments of the given lengths (0 makes an empty segment),
    /// the rest forming the last segment. Returns the sequence and the offset where each segment ends.
    /// </summary>
    public static ReadOnlySequence<byte> Create(ReadOnlyMemory<byte> data, ReadOnlySpan<byte> lengths, List<long> segmentEnds)
    {
        segmentEnds.Clear();
        Segment? first = null;
        Segment? last = null;
        int offset = 0;
        foreach (byte length in lengths)
        {
            int take = Math.Min(length, data.Length - offset);
            Append(data.Slice(offset, take), ref first, ref last);
            offset += take;
            segmentEnds.Add(offset);
        }

        Append(data[offset..], ref first, ref last);
        segmentEnds.Add(data.Length);
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    /// <summary>The bytes in two segments (one when there are fewer than two bytes).</summary>
    public static ReadOnlySequence<byte> InHalves(byte[] data)
    {
        if (data.Length < 2)
        {
            return new ReadOnlySequence<byte>(data);
        }

        Segment? first = null;
        Segment? last = null;
        Append(data.AsMemory(0, data.Length / 2), ref first, ref last);
        Append(data.AsMemory(data.Length / 2), ref first, ref last);
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private static void Append(ReadOnlyMemory<byte> memory, ref Segment? first, ref Segment? last)
    {
        var segment = new Segment(memory, last is null ? 0 : last.RunningIndex + last.Memory.Length);
        if (last is null)
        {
            first = segment;
        }
        else
        {
            last.Link(segment);
        }

        last = segment;
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public void Link(Segment next) => Next = next;
    }
}
