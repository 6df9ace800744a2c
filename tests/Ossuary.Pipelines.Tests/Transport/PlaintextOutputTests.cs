using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.InteropServices;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// The plaintext output without a pipe keeps the contract the <see cref="Pipe"/> under the old writer gave the
/// application and the outbound loop: backpressure at four frames unconsumed (resumed under two), a token that
/// cancels a waiting flush with its bytes still committed, <c>CancelPendingFlush</c>, a parked failure read after
/// the bytes before it, the end of the connection waking a waiting flush, and plaintext blocks zeroed and given
/// back once the loop has taken their bytes (an idle output holds none).
/// </summary>
public sealed class PlaintextOutputTests
{
    private const int Frame = OssuarySession.MaxPlaintextLength;

    [Fact]
    public async Task WhatIsFlushedIsReadByTheLoopAndItsNextReadWaitsForMore()
    {
        var output = new PlaintextOutput();
        Assert.True(AtOnce(output.WriteAsync("first"u8.ToArray())));

        ReadResult read = await output.ReadOutboundAsync().Within();
        Assert.Equal("first"u8.ToArray(), read.Buffer.ToArray());
        Assert.False(read.IsCompleted);
        output.AdvanceOutboundTo(read.Buffer.End);

        ValueTask<ReadResult> next = output.ReadOutboundAsync();
        Assert.False(next.IsCompleted);
        await Task.Run(() => output.WriteAsync("second"u8.ToArray()).AsTask()).Within();
        read = await next.Within();
        Assert.Equal("second"u8.ToArray(), read.Buffer.ToArray());
        output.AdvanceOutboundTo(read.Buffer.End);
        Assert.Equal(11, output.Written);
        End(output);
    }

    [Fact]
    public async Task AFlushWaitsOnceFourFramesAreUnconsumedAndGoesOnWhenTheLoopTakesThemUnderTwo()
    {
        var output = new PlaintextOutput();
        for (int i = 0; i < 3; i++)
        {
            Assert.True(AtOnce(output.WriteAsync(new byte[Frame])));
        }

        ValueTask<FlushResult> fourth = output.WriteAsync(new byte[Frame]);
        Assert.False(fourth.IsCompleted, "a flush with four frames unconsumed did not wait for room");

        ReadResult read = await output.ReadOutboundAsync().Within();
        Assert.Equal(4L * Frame, read.Buffer.Length);
        output.AdvanceOutboundTo(read.Buffer.GetPosition(Frame)); // three left: still no room
        await Task.Yield();
        Assert.False(fourth.IsCompleted);

        read = await output.ReadOutboundAsync().Within();
        output.AdvanceOutboundTo(read.Buffer.GetPosition(2L * Frame)); // one left
        FlushResult flushed = await fourth.Within();
        Assert.False(flushed.IsCompleted);
        Assert.False(flushed.IsCanceled);
        End(output);
    }

    [Fact]
    public async Task ATokenCancelsAWaitingFlushAndItsBytesAreStillSent()
    {
        var output = new PlaintextOutput();
        using var cancel = new CancellationTokenSource();
        ValueTask<FlushResult> waiting = output.WriteAsync(new byte[4 * Frame], cancel.Token);
        Assert.False(waiting.IsCompleted);

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.AsTask()).Within();

        ReadResult read = await output.ReadOutboundAsync().Within();
        Assert.Equal(4L * Frame, read.Buffer.Length);
        output.AdvanceOutboundTo(read.Buffer.End);
        End(output);
    }

    [Fact]
    public async Task CancelPendingFlushEndsAWaitingFlushOrElseTheNextCancelled()
    {
        var output = new PlaintextOutput();
        ValueTask<FlushResult> waiting = output.WriteAsync(new byte[4 * Frame]);
        Assert.False(waiting.IsCompleted);
        output.CancelPendingFlush();
        Assert.True((await waiting.Within()).IsCanceled);

        output.CancelPendingFlush();
        FlushResult next = await output.WriteAsync("x"u8.ToArray()).Within();
        Assert.True(next.IsCanceled);
        Assert.False((await output.WriteAsync("y"u8.ToArray()).Within()).IsCanceled); // once only
        End(output);
    }

    [Fact]
    public async Task AFailureTheApplicationCompletesWithIsParkedAndTheLoopReadsTheBytesBeforeItCompleted()
    {
        var output = new PlaintextOutput();
        await output.WriteAsync("last words"u8.ToArray()).Within();
        var failure = new InvalidOperationException("the application failed");
        await output.CompleteAsync(failure);

        ReadResult read = await output.ReadOutboundAsync().Within();
        Assert.True(read.IsCompleted);
        Assert.Equal("last words"u8.ToArray(), read.Buffer.ToArray());
        Assert.Same(failure, output.Failure);
        output.AdvanceOutboundTo(read.Buffer.End);
        output.CompleteOutboundReader();
    }

    [Fact]
    public async Task TheConnectionsEndWakesAWaitingFlushCompletedAndLaterFlushesSayCompleted()
    {
        var output = new PlaintextOutput();
        ValueTask<FlushResult> waiting = output.WriteAsync(new byte[4 * Frame]);
        Assert.False(waiting.IsCompleted);

        await Task.Run(output.EndConnection).Within();
        Assert.True((await waiting.Within()).IsCompleted);
        Assert.True((await output.WriteAsync("more"u8.ToArray()).Within()).IsCompleted);
        End(output);
    }

    [Fact]
    public async Task TheLoopsCompletionWakesAWaitingFlushCompleted()
    {
        var output = new PlaintextOutput();
        ValueTask<FlushResult> waiting = output.WriteAsync(new byte[4 * Frame]);
        Assert.False(waiting.IsCompleted);

        await Task.Run(output.CompleteOutboundReader).Within();
        Assert.True((await waiting.Within()).IsCompleted);
        output.Complete();
    }

    [Fact]
    public async Task CancelOutboundReadEndsAWaitingReadOrElseTheNextCancelled()
    {
        var output = new PlaintextOutput();
        ValueTask<ReadResult> waiting = output.ReadOutboundAsync();
        await Task.Run(output.CancelOutboundRead).Within();
        ReadResult read = await waiting.Within();
        Assert.True(read.IsCanceled);
        output.AdvanceOutboundTo(read.Buffer.End);

        output.CancelOutboundRead();
        read = await output.ReadOutboundAsync().Within();
        Assert.True(read.IsCanceled);
        output.AdvanceOutboundTo(read.Buffer.End);
        End(output);
    }

    [Fact]
    public async Task ABlockIsZeroedAndGivenBackOnceTheLoopHasTakenItsBytes()
    {
        var output = new PlaintextOutput();
        Memory<byte> memory = output.GetMemory(64);
        Assert.True(MemoryMarshal.TryGetArray<byte>(memory, out ArraySegment<byte> block));
        "secret plaintext"u8.CopyTo(memory.Span);
        output.Advance(16);
        await output.FlushAsync().Within();

        ReadResult read = await output.ReadOutboundAsync().Within();
        Assert.Equal("secret plaintext"u8.ToArray(), read.Buffer.ToArray());
        output.AdvanceOutboundTo(read.Buffer.End);

        // Nothing buffered: the block went back, zeroed (another connection may have rented it since, so only ours is looked for).
        Assert.False(block.AsSpan(0, 16).SequenceEqual("secret plaintext"u8), "a block the loop had taken was not zeroed");
        End(output);
    }

    [Fact]
    public async Task ABlockTheApplicationStillWritesIntoIsKeptUntilItsAdvanceAndFlush()
    {
        var output = new PlaintextOutput();
        await output.WriteAsync("sent"u8.ToArray()).Within();
        Memory<byte> memory = output.GetMemory(8); // the same block's rest, in the application's hands
        ReadResult read = await output.ReadOutboundAsync().Within();
        output.AdvanceOutboundTo(read.Buffer.End);

        "pending!"u8.CopyTo(memory.Span);
        output.Advance(8);
        await output.FlushAsync().Within();
        read = await output.ReadOutboundAsync().Within();
        Assert.Equal("pending!"u8.ToArray(), read.Buffer.ToArray());
        output.AdvanceOutboundTo(read.Buffer.End);
        End(output);
    }

    private static bool AtOnce(ValueTask<FlushResult> flush) => flush.IsCompletedSuccessfully && !flush.Result.IsCanceled;

    private static void End(PlaintextOutput output)
    {
        output.Complete();
        output.CompleteOutboundReader();
    }
}
