using System.Buffers;
using System.Collections.Concurrent;
using System.Numerics;
using System.Security.Cryptography;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// The memory of the adapter's plaintext pipes: every block is zeroed when a pipe gives it back.
/// </summary>
/// <remarks>
/// A pipe without a pool rents from <see cref="ArrayPool{T}.Shared"/>, which does not clear what it
/// takes back: what a connection decrypted, or what its application wrote to be sealed, stayed in
/// arrays that any code in the process rents next (and a component that sends a rented array past
/// what it wrote would send it). Zeroing costs one pass over each block as it is returned, a few
/// percent of a frame's cost beside the cipher. Blocks come in powers of two from 4 KiB (the pipes'
/// minimum segment) to 64 KiB; each size keeps at most <see cref="RetainedBytesPerSize"/> of free
/// blocks, so a burst does not hold on to its peak; larger requests are served unpooled and zeroed all
/// the same. Blocks are pinned, so that the GC never moves one and leaves a copy behind. A block that is
/// never given back (its pipe never completed) is zeroed when the GC collects it.
/// Owners are reused with their arrays: renting a block allocates nothing once the pool is warm.
/// </remarks>
internal sealed class PlaintextMemoryPool : MemoryPool<byte>
{
    private static PlaintextMemoryPool? s_instance;

    /// <summary>
    /// The pool of the process, made at its first use. Not a static initializer: the first use can
    /// meet a full heap (in the C library, the first record a connection opens), and a type whose
    /// static set-up threw stays broken for the life of the process, so every later record would
    /// have failed too. Made here, a set-up that runs out of memory fails that one call only.
    /// </summary>
    public static PlaintextMemoryPool Instance => Volatile.Read(ref s_instance) ?? Create();

    internal const int RetainedBytesPerSize = 2 * 1024 * 1024;
    private const int SmallestShift = 12; // 4 KiB
    private const int LargestShift = 16; // 64 KiB

    private readonly Shelf[] _shelves = new Shelf[LargestShift - SmallestShift + 1];

    private PlaintextMemoryPool()
    {
        for (int i = 0; i < _shelves.Length; i++)
        {
            _shelves[i] = new Shelf(1 << (SmallestShift + i));
        }
    }

    public override int MaxBufferSize => Array.MaxLength;

    private static PlaintextMemoryPool Create()
    {
        // Two threads may both make one; the first stored is the one every caller uses.
        var created = new PlaintextMemoryPool();
        return Interlocked.CompareExchange(ref s_instance, created, null) ?? created;
    }

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        int size = Math.Max(minBufferSize, 1 << SmallestShift);
        int shift = BitOperations.Log2(BitOperations.RoundUpToPowerOf2((uint)size));
        return shift <= LargestShift ? _shelves[shift - SmallestShift].Take() : new Block(null, size);
    }

    /// <summary>A block of at least <paramref name="minBufferSize"/> bytes, as <see cref="Rent"/> gives, typed as the sequence segment it also is.</summary>
    public Block RentBlock(int minBufferSize) => (Block)Rent(minBufferSize);

    protected override void Dispose(bool disposing)
    {
        // Shared by every connection of the process: never disposed.
    }

    /// <summary>The free blocks of one size.</summary>
    internal sealed class Shelf(int blockSize)
    {
        private readonly ConcurrentQueue<Block> _free = new();
        private readonly int _capacity = RetainedBytesPerSize / blockSize;
        private int _count;

        public Block Take()
        {
            if (_free.TryDequeue(out Block? block))
            {
                Interlocked.Decrement(ref _count);
                block.MarkRented();
                return block;
            }

            return new Block(this, blockSize);
        }

        /// <summary>Shelves a zeroed block; false past the cap, where the block is left to the GC.</summary>
        public bool Put(Block block)
        {
            if (Interlocked.Increment(ref _count) > _capacity)
            {
                Interlocked.Decrement(ref _count);
                return false;
            }

            _free.Enqueue(block);
            return true;
        }
    }

    /// <summary>
    /// A block, and the segment of a <see cref="ReadOnlySequence{T}"/> it is in a chain of blocks
    /// (<see cref="PlaintextBlockChain"/>): one object a block, made once and pooled with its array, so that a
    /// connection holds no segment of its own while it holds no plaintext.
    /// </summary>
    internal sealed class Block(Shelf? shelf, int size) : ReadOnlySequenceSegment<byte>, IMemoryOwner<byte>
    {
        // Pinned: a block the GC compacted would leave a copy of its plaintext behind, never zeroed.
        private readonly byte[] _array = GC.AllocateArray<byte>(size, pinned: true);
        private int _rented = 1;

        Memory<byte> IMemoryOwner<byte>.Memory => _array;

        /// <summary>The whole block, written or not.</summary>
        public byte[] Array => _array;

        /// <summary>The next block of the chain, or null.</summary>
        public Block? NextBlock => (Block?)Next;

        public void MarkRented() => Volatile.Write(ref _rented, 1);

        /// <summary>Makes this the chain's last block, its first byte at <paramref name="runningIndex"/>, nothing in it yet.</summary>
        public void StartChain(long runningIndex)
        {
            RunningIndex = runningIndex;
            Memory = ReadOnlyMemory<byte>.Empty;
            Next = null;
        }

        /// <summary>Its first <paramref name="length"/> bytes are the segment's (the writer has written them).</summary>
        public void SetLength(int length) => Memory = new ReadOnlyMemory<byte>(_array, 0, length);

        /// <summary>Links <paramref name="next"/> after this block.</summary>
        public void Link(Block next) => Next = next;

        public void Dispose()
        {
            // A second Dispose of the same rental must not zero a block rented again since, nor shelve it twice.
            if (Interlocked.Exchange(ref _rented, 0) == 1)
            {
                // Out of any chain: a shelved block must not keep the blocks it was linked to alive.
                Next = null;
                Memory = default;
                CryptographicOperations.ZeroMemory(_array);
                if (shelf?.Put(this) != true)
                {
                    GC.SuppressFinalize(this); // zeroed, and never rented again
                }
            }
        }

        /// <summary>
        /// A block that is collected while rented was never given back: a pipe that was never completed,
        /// because its application left a read or a write half done (no AdvanceTo, no Advance) and dropped
        /// the connection, which disposal cannot complete under a call that may still be running on
        /// another thread. Its plaintext would be freed as it was, so it is zeroed here.
        /// </summary>
        ~Block()
        {
            if (Volatile.Read(ref _rented) == 1)
            {
                CryptographicOperations.ZeroMemory(_array);
            }
        }
    }
}
