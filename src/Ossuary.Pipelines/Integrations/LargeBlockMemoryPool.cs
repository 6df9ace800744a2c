using System.Buffers;
using System.Collections.Concurrent;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// Fixed-size pinned blocks, reused up to a cap: see <see cref="LargeBlockMemoryPoolFactory"/>.
/// </summary>
internal sealed class LargeBlockMemoryPool(LargeBlockMemoryPoolFactory factory) : MemoryPool<byte>
{
    private readonly ConcurrentQueue<Block> _free = new();
    private int _freeCount;
    private volatile bool _disposed;

    public override int MaxBufferSize => factory.BlockSize;

    internal int RetainedBlocks => Volatile.Read(ref _freeCount);

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, factory.BlockSize);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_free.TryDequeue(out Block? block))
        {
            Interlocked.Decrement(ref _freeCount);
        }
        else
        {
            block = new Block(this, factory.BlockSize);
            factory.CountAllocation();
        }

        block.MarkRented();
        return block;
    }

    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        while (_free.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _freeCount);
        }
    }

    private void Return(Block block)
    {
        // Past the cap a block is left to the GC: a burst of busy connections must not pin its
        // peak for the life of the process.
        if (_disposed || Interlocked.Increment(ref _freeCount) > factory.MaxRetainedBlocks)
        {
            if (!_disposed)
            {
                Interlocked.Decrement(ref _freeCount);
            }

            return;
        }

        _free.Enqueue(block);
    }

    private sealed class Block(LargeBlockMemoryPool pool, int size) : IMemoryOwner<byte>
    {
        // Pinned (the pinned object heap), as Kestrel's own blocks are: sockets read into them.
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(size, pinned: true);
        private int _rented;

        public Memory<byte> Memory => _array;

        public void MarkRented() => Volatile.Write(ref _rented, 1);

        public void Dispose()
        {
            // A second Dispose of the same rental must not put the block in the pool twice.
            if (Interlocked.Exchange(ref _rented, 0) == 1)
            {
                pool.Return(this);
            }
        }
    }
}
