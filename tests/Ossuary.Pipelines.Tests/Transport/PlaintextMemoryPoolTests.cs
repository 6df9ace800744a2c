using System.Buffers;
using System.Runtime.CompilerServices;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>The plaintext pipes' pool alone: sizes, zeroing, reuse (the pipes' use is in PlaintextHygieneTests).</summary>
public class PlaintextMemoryPoolTests
{
    [Theory]
    [InlineData(-1, 4096)] // the pipe's "any size"
    [InlineData(1, 4096)]
    [InlineData(4096, 4096)]
    [InlineData(4097, 8192)]
    [InlineData(16384, 16384)] // one whole frame's plaintext
    [InlineData(65536, 65536)]
    [InlineData(65537, 65537)] // past the largest pooled size: exactly what was asked, unpooled
    public void RentalsAreAtLeastWhatWasAskedFor(int asked, int length)
    {
        using IMemoryOwner<byte> block = PlaintextMemoryPool.Instance.Rent(asked);
        Assert.Equal(length, block.Memory.Length);
    }

    [Theory]
    [InlineData(8192)] // pooled, but not the pipes' usual 4 KiB: a block taken by another test between the return and the check would fail this
    [InlineData(100_000)] // unpooled
    public void AReturnedBlockIsZeroed(int size)
    {
        IMemoryOwner<byte> block = PlaintextMemoryPool.Instance.Rent(size);
        Memory<byte> memory = block.Memory;
        memory.Span.Fill(0xA5);
        block.Dispose();
        Assert.Equal(-1, memory.Span.IndexOfAnyExcept((byte)0));
    }

    /// <summary>
    /// A block whose pipe never gives it back is zeroed when it is collected. A client application that
    /// left a read half done (its parser threw before AdvanceTo, say) and disposed its connection left
    /// such blocks: disposal cannot complete an input that a read on another thread may still be using,
    /// so the pipe never returned them, and the plaintext in them was freed by the collector as it was.
    /// The array is held here (as a Memory, which does not hold the block) so that what became of it can be seen.
    /// </summary>
    [Theory]
    [InlineData(8192)] // pooled
    [InlineData(100_000)] // unpooled
    public void ABlockNeverReturnedIsZeroedWhenItIsCollected(int size)
    {
        Memory<byte> memory = RentFilledAndDrop(size);
        Assert.Equal(-1, memory.Span.IndexOf((byte)0)); // the test's own check: nothing has zeroed it yet

        GC.Collect();
        GC.WaitForPendingFinalizers();

        Assert.Equal(-1, memory.Span.IndexOfAnyExcept((byte)0));
    }

    // Its own frame, so that no local of the test's keeps the block itself alive.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Memory<byte> RentFilledAndDrop(int size)
    {
        IMemoryOwner<byte> block = PlaintextMemoryPool.Instance.Rent(size);
        block.Memory.Span.Fill(0xA5);
        return block.Memory;
    }

    [Fact]
    public void ABlockDisposedTwiceIsShelvedOnce()
    {
        // A size the pipes seldom ask for; another test taking the block in between cannot fail this.
        IMemoryOwner<byte> block = PlaintextMemoryPool.Instance.Rent(32768);
        block.Dispose();
        block.Dispose();

        using IMemoryOwner<byte> first = PlaintextMemoryPool.Instance.Rent(32768);
        using IMemoryOwner<byte> second = PlaintextMemoryPool.Instance.Rent(32768);
        Assert.NotSame(first, second);
    }

    /// <summary>
    /// The pool was made by a static initializer, at the first record opened into it: in the C
    /// library that can be with the managed heap full, and a type whose static set-up threw stays
    /// broken for the life of the process, so no record could be opened again. Made at its first
    /// use without one, a set-up that runs out of memory fails that use only. (Seen in a C program
    /// under ulimit -v that filled the heap before its first record: every later ossuary_recv_data()
    /// returned -1, in 3 of 5 runs.)
    /// </summary>
    [Fact]
    public void ThePoolHasNoStaticSetUpThatAFullHeapCouldBreakForGood()
    {
        Assert.Null(typeof(PlaintextMemoryPool).TypeInitializer);
        Assert.Same(PlaintextMemoryPool.Instance, PlaintextMemoryPool.Instance);
    }
}
