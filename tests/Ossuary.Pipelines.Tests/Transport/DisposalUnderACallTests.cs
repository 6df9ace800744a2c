using System.Buffers;
using System.IO.Pipelines;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// Disposal from another thread while the application is inside a read (holding its buffer) or a
/// write (filling the memory GetSpan gave it): the call finishes on memory that is still its own,
/// and the end is completed, its memory zeroed and pooled, only once the call is over. Completed
/// under the call, the pipe gave that memory back at once: a held buffer read zeros (or, once
/// rented again, another connection's plaintext), and the write's Advance threw ArgumentOutOfRange.
/// </summary>
public sealed class DisposalUnderACallTests
{
    private const int Length = 48 * 1024;

    [Fact]
    public Task AReadersBufferStaysItsOwnUntilAdvanceToThoughTheConnectionIsDisposed() => Run(async () =>
    {
        LinkedPipes link = LinkedPipes.Transparent(out Task relays);
        InMemoryPair pair = await InMemoryPair.ConnectAsync(link);
        await pair.Server.Output.WriteAsync(Enumerable.Repeat((byte)0xA5, Length).ToArray());
        ReadResult held = await ReadAtLeastWithoutConsumingAsync(pair.Client.Input, Length);

        await pair.DisposeAsync(); // on this thread, while the read's buffer is held

        Assert.Equal(Length, held.Buffer.Length);
        foreach (ReadOnlyMemory<byte> segment in held.Buffer)
        {
            Assert.Equal(-1, segment.Span.IndexOfAnyExcept((byte)0xA5)); // not zeroed, not reused
        }

        pair.Client.Input.AdvanceTo(held.Buffer.End);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await pair.Client.Input.ReadAsync()); // completed once given back
        await relays.Within();
    });

    /// <summary>
    /// A read that waits when disposal completes the input gets an empty, completed result; the
    /// application's AdvanceTo for it, which every reader owes, must be taken (it carries the empty
    /// sequence's positions, not the input's), and the next read is refused as after any completion.
    /// </summary>
    [Fact]
    public Task AReadWaitingWhileDisposalCompletesTheInputEndsCleanly() => Run(async () =>
    {
        var input = new Ossuary.Pipelines.Transport.PlaintextInput();
        ValueTask<ReadResult> waiting = input.ReadAsync();
        Assert.False(waiting.IsCompleted);

        await Task.Run(input.CompleteFromDisposal).Within();

        ReadResult read = await waiting;
        Assert.True(read.IsCompleted);
        Assert.True(read.Buffer.IsEmpty);
        input.AdvanceTo(read.Buffer.End);
        Assert.Throws<InvalidOperationException>(() => input.TryRead(out _));
        input.CompleteWriter();
    });

    /// <summary>
    /// A read that CancelPendingRead ended after the input had ended (its writer completed, the cancellation
    /// asked for with no read waiting) is given back as any cancelled read: empty, not completed, its AdvanceTo
    /// not owed. An application that never advances after it (as AsStream) must not keep disposal from
    /// completing the input and zeroing its block; the read after it still has the bytes and the end.
    /// </summary>
    [Fact]
    public Task ACancelledReadOfAnEndedInputHoldsNothingDisposalWaitsFor() => Run(async () =>
    {
        var input = new Ossuary.Pipelines.Transport.PlaintextInput();
        input.Writer.Write("goodbye"u8);
        FlushResult flushed = await input.FlushAsync();
        Assert.False(flushed.IsCompleted);
        input.CompleteWriter();

        ReadResult ended = await input.ReadAsync();
        Assert.True(ended.IsCompleted);
        Memory<byte> block = System.Runtime.InteropServices.MemoryMarshal.AsMemory(ended.Buffer.First);
        input.AdvanceTo(ended.Buffer.Start);

        input.CancelPendingRead();
        ReadResult cancelled = await input.ReadAsync();
        Assert.True(cancelled.IsCanceled);
        Assert.False(cancelled.IsCompleted);
        Assert.True(cancelled.Buffer.IsEmpty);

        ReadResult last = await input.ReadAsync();
        Assert.True(last.IsCompleted);
        Assert.False(last.IsCanceled);
        Assert.Equal("goodbye"u8.ToArray(), last.Buffer.ToArray());
        input.AdvanceTo(last.Buffer.Start);

        input.CancelPendingRead();
        Assert.True((await input.ReadAsync()).IsCanceled); // never advanced
        input.CompleteFromDisposal();

        Assert.Equal(-1, block.Span.IndexOfAnyExcept((byte)0));
        Assert.Throws<InvalidOperationException>(() => input.TryRead(out _));
    });

    [Fact]
    public Task DisposalEndsThoughTheApplicationHoldsAReadAndTheInputIsFull() => Run(async () =>
    {
        // The inbound loop waits for room the application (holding its buffer) never makes; the
        // reader's completion waits for the application: disposal must end the loop all the same.
        LinkedPipes link = LinkedPipes.Transparent(out Task relays);
        InMemoryPair pair = await InMemoryPair.ConnectAsync(link);
        Task sending = pair.Server.Output.WriteAsync(new byte[1024 * 1024]).AsTask();
        ReadResult held = await ReadAtLeastWithoutConsumingAsync(pair.Client.Input, 4 * Ossuary.Pipelines.Protocol.OssuarySession.MaxPlaintextLength);

        await pair.DisposeAsync().Within(); // hung on the inbound loop's flush

        pair.Client.Input.AdvanceTo(held.Buffer.End);
        await sending.Within();
        await relays.Within();
    });

    [Fact]
    public Task AWriteInProgressEndsOnItsOwnMemoryAndItsFlushReportsTheEnd() => Run(async () =>
    {
        LinkedPipes link = LinkedPipes.Transparent(out Task relays);
        InMemoryPair pair = await InMemoryPair.ConnectAsync(link);
        Memory<byte> filling = pair.Client.Output.GetMemory(4096);

        await pair.DisposeAsync(); // on this thread, between GetMemory and Advance

        filling.Span.Fill(0x5A);
        pair.Client.Output.Advance(filling.Length);
        FlushResult flushed = await pair.Client.Output.FlushAsync();
        Assert.True(flushed.IsCompleted);
        Assert.Throws<InvalidOperationException>(() => pair.Client.Output.GetMemory()); // completed once the write ended
        await relays.Within();
    });

    private static async Task<ReadResult> ReadAtLeastWithoutConsumingAsync(PipeReader input, int length)
    {
        while (true)
        {
            ReadResult read = await input.ReadAsync();
            if (read.Buffer.Length >= length)
            {
                return read;
            }

            Assert.False(read.IsCompleted, "the input ended early");
            input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    private static Task Run(Func<Task> test) => test().Within();
}
