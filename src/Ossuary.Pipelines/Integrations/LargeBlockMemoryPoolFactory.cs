using System.Buffers;
using Microsoft.AspNetCore.Connections;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// Memory pools of large pinned blocks for Kestrel's transports, for servers that mainly move bulk
/// data. Register it with <see cref="OssuaryServiceCollectionExtensions.AddLargeBlockMemoryPool"/>.
/// </summary>
/// <remarks>
/// <para>
/// Kestrel's socket transport receives into its memory pool's blocks, 4 KiB by default, so a full
/// 16,412-byte Ossuary packet takes at least five receives and arrives spread over five segments,
/// which the adapter then gathers. With 64 KiB blocks, one receive brings several whole packets and
/// most are opened where they lie. On the loopback harness (<c>ossuary bench</c>) this took the
/// Kestrel server's throughput with 16 KiB writes from about 0.6x to 0.7-0.8x of plain TCP's, in the
/// same run (see <c>benchmarks/README.md</c>).
/// </para>
/// <para>
/// The pool serves every Kestrel transport in the host (HTTP included). A connection that is reading
/// holds whole blocks; an idle one holds none as long as Kestrel's
/// <c>WaitForDataBeforeAllocatingBuffer</c> is left on (the default). At most
/// <see cref="MaxRetainedBlocks"/> free blocks are kept per pool; the rest are left to the GC.
/// </para>
/// </remarks>
public sealed class LargeBlockMemoryPoolFactory : IMemoryPoolFactory<byte>
{
    /// <summary>The default block size: 64 KiB, room for three full Ossuary packets and part of a fourth.</summary>
    public const int DefaultBlockSize = 64 * 1024;

    /// <summary>The default number of free blocks a pool keeps: 256, 16 MiB of 64 KiB blocks.</summary>
    public const int DefaultMaxRetainedBlocks = 256;

    private long _allocations;

    /// <summary>Creates a factory for pools of <paramref name="blockSize"/>-byte blocks.</summary>
    /// <param name="blockSize">Bytes per block, from 4 KiB to 1 MiB.</param>
    /// <param name="maxRetainedBlocks">Free blocks each pool keeps for reuse; 0 keeps none.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is outside its range.</exception>
    public LargeBlockMemoryPoolFactory(int blockSize = DefaultBlockSize, int maxRetainedBlocks = DefaultMaxRetainedBlocks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 4096);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(blockSize, 1024 * 1024);
        ArgumentOutOfRangeException.ThrowIfNegative(maxRetainedBlocks);
        BlockSize = blockSize;
        MaxRetainedBlocks = maxRetainedBlocks;
    }

    /// <summary>Bytes per block: the largest rental the pools serve.</summary>
    public int BlockSize { get; }

    /// <summary>Free blocks each pool keeps for reuse.</summary>
    public int MaxRetainedBlocks { get; }

    /// <summary>Blocks allocated so far by all of this factory's pools (reuses not counted).</summary>
    public long BlocksAllocated => Interlocked.Read(ref _allocations);

    /// <inheritdoc />
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new LargeBlockMemoryPool(this);

    internal void CountAllocation() => Interlocked.Increment(ref _allocations);
}
