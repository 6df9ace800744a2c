using System.Globalization;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Looks for bytes in this process's own writable memory (Linux /proc/self/maps and /proc/self/mem).</summary>
internal static class ProcessMemory
{
    // One buffer for every search, not 1 MiB on the large object heap each time: such allocations
    // bring on full collections, whose finalizers free the very secrets a test checks that the
    // library frees itself. Searches run one at a time (the tests that call them run in parallel).
    private static readonly Lock Searching = new();

    // Pinned, so that its address is fixed: the search skips the chunk's own memory. The chunk lies in
    // the memory it reads, so reading it reads itself: bytes the last reads left there, or bytes this
    // very read has just copied in, come back from there as if they were another copy. A needle the
    // previous mapping's last read held was found once more that way (3 searches in 300 in a process
    // that makes pinned blocks as the plaintext pool does).
    private static readonly byte[] Chunk = GC.AllocateArray<byte>(1 << 20, pinned: true);

    /// <summary>
    /// How many times <paramref name="needle"/> occurs in the process's private writable mappings (the
    /// heaps, native and managed, and the stacks), not counting the <paramref name="ignore"/> bytes the
    /// caller itself keeps it in: a pinned array, which is not counted.
    /// </summary>
    public static int Count(byte[] pinnedNeedle)
    {
        lock (Searching)
        {
            try
            {
                return CountUnlocked(pinnedNeedle, Chunk);
            }
            finally
            {
                Array.Clear(Chunk); // what it last read may be the needle: not for the next search to find
            }
        }
    }

    private static int CountUnlocked(byte[] pinnedNeedle, byte[] chunk)
    {
        nint ignored = System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(pinnedNeedle, 0);
        long chunkStart = System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(chunk, 0);
        long chunkEnd = chunkStart + chunk.Length;
        ReadOnlySpan<byte> needle = pinnedNeedle;
        int count = 0;
        using var memory = new FileStream("/proc/self/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
        foreach (string line in File.ReadAllLines("/proc/self/maps"))
        {
            // "start-end perms offset dev inode [path]": private writable regions only (file-backed code and data are not secrets' homes).
            string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (!fields[1].StartsWith("rw", StringComparison.Ordinal) || fields[1][3] != 'p' || (fields.Length > 5 && fields[5].StartsWith('/')))
            {
                continue;
            }

            string[] range = fields[0].Split('-');
            long start = long.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            long end = long.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            for (long at = start; at < end; at += chunk.Length - needle.Length)
            {
                int length = (int)Math.Min(chunk.Length, end - at);
                int read;
                try
                {
                    memory.Position = at;
                    read = memory.ReadAtLeast(chunk.AsSpan(0, length), length, throwOnEndOfStream: false);
                }
                catch (IOException)
                {
                    break; // a region that cannot be read (guard pages)
                }

                Span<byte> span = chunk.AsSpan(0, read);
                for (int i = span.IndexOf(needle); i >= 0; i = span[(i + 1)..].IndexOf(needle) is var next and >= 0 ? i + 1 + next : -1)
                {
                    long found = at + i;
                    bool inChunk = found + needle.Length > chunkStart && found < chunkEnd;
                    if (found != ignored && !inChunk)
                    {
                        count++;
                    }
                }

                if (read < length || at + length >= end)
                {
                    break;
                }
            }
        }

        return count;
    }
}
