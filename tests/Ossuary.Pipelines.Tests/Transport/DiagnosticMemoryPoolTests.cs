using System.Buffers;
using Ossuary.Pipelines.Tests.Support;
using Xunit.Sdk;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>The diagnostic pool itself: each mistake it exists to catch fails its final check.</summary>
public class DiagnosticMemoryPoolTests
{
    [Fact]
    public async Task ABlockReturnedTwiceIsReportedEvenAfterSomeoneElseRentedIt()
    {
        var pool = new DiagnosticMemoryPool(4096);
        IMemoryOwner<byte> first = pool.Rent();
        first.Dispose();
        using IMemoryOwner<byte> second = pool.Rent(); // the same bytes, now another's
        first.Dispose();
        second.Dispose();

        await Assert.ThrowsAsync<EmptyException>(() => pool.AssertAllReturnedAsync());
    }

    [Fact]
    public async Task AReturnedBlockReadsAsPoisonAndAWriteToItIsReported()
    {
        var pool = new DiagnosticMemoryPool(4096);
        IMemoryOwner<byte> owner = pool.Rent();
        Memory<byte> kept = owner.Memory;
        kept.Span.Fill(0x42);
        owner.Dispose();

        Assert.Equal(DiagnosticMemoryPool.Poison, kept.Span[100]);
        kept.Span[7] = 0x42;
        await Assert.ThrowsAsync<EmptyException>(() => pool.AssertAllReturnedAsync());
    }

    [Fact]
    public async Task ABlockNeverReturnedFailsTheCheck()
    {
        var pool = new DiagnosticMemoryPool(4096);
        _ = pool.Rent();

        await Assert.ThrowsAsync<TrueException>(() => pool.AssertAllReturnedAsync(TimeSpan.FromMilliseconds(100)));
    }

    [Fact]
    public async Task RentalsReturnedOnceLeaveNothingToReport()
    {
        var pool = new DiagnosticMemoryPool(4096);
        IMemoryOwner<byte>[] owners = [pool.Rent(), pool.Rent(4096), pool.Rent(1)];
        foreach (IMemoryOwner<byte> owner in owners)
        {
            owner.Memory.Span.Fill(0x11);
            owner.Dispose();
        }

        using (IMemoryOwner<byte> again = pool.Rent())
        {
            again.Memory.Span.Clear();
        }

        await pool.AssertAllReturnedAsync();
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(4097));
    }
}
