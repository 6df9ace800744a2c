using System.Buffers;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Builds a multi-segment <see cref="ReadOnlySequence{T}"/> from chunks, the way a pipe hands over its buffers.</summary>
internal static class SegmentedSequence
{
    public static ReadOnlySequence<byte> Create(IEnumerable<ReadOnlyMemory<byte>> chunks)
    {
        Segment? first = null;
        Segment? last = null;
        foreach (ReadOnlyMemory<byte> chunk in chunks)
        {
            var segment = new Segment(chunk, last is null ? 0 : last.RunningIndex + last.Memory.Length);
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

        return first is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(first, 0, last!, last!.Memory.Length);
    }

    /// <summary>Cuts <paramref name="bytes"/> into chunks of the given sizes, used in turn and repeated until the bytes run out.</summary>
    public static ReadOnlySequence<byte> Create(byte[] bytes, IReadOnlyList<int> chunkSizes)
    {
        if (chunkSizes.Count == 0 || chunkSizes.All(size => size <= 0))
        {
            throw new ArgumentException("At least one chunk size must be positive.", nameof(chunkSizes));
        }

        var chunks = new List<ReadOnlyMemory<byte>>();
        for (int offset = 0, i = 0; offset < bytes.Length; i++)
        {
            int size = Math.Min(Math.Max(chunkSizes[i % chunkSizes.Count], 0), bytes.Length - offset);
            chunks.Add(bytes.AsMemory(offset, size));
            offset += size;
        }

        return Create(chunks);
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
