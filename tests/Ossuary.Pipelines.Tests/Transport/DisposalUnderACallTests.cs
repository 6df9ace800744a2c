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
    /// A read that lands while disposal is completing the input (its gate is closed, the pipe not yet
    /// completed) gets an empty, completed result; the application's AdvanceTo for it, which every
    /// reader owes, must be taken. It was passed to the pipe, whose read had returned real data, with
    /// the positions of the empty sequence: InvalidCastException (seen first in
    /// DisposalRacingTheApplicationTests; the inner reader here holds that window open).
    /// </summary>
    [Fact]
    public Task AReadLandingWhileDisposalCompletesTheInputEndsCleanly() => Run(async () =>
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync("arrived"u8.ToArray());
        var inner = new SlowCompletingReader(pipe.Reader);
        var input = new Ossuary.Pipelines.Transport.PlaintextReader(inner);

        Task disposal = Task.Run(input.CompleteFromDisposal);
        await inner.Completing.Within(); // the gate is closed; the pipe is not completed yet

        ReadResult read = await input.ReadAsync();
        Assert.True(read.IsCompleted);
        Assert.True(read.Buffer.IsEmpty);
        input.AdvanceTo(read.Buffer.End);

        inner.FinishCompleting();
        await disposal.Within();
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

    /// <summary>A pipe's reader whose completion waits until told: the window between disposal closing the gate and completing the pipe.</summary>
    private sealed class SlowCompletingReader(PipeReader inner) : PipeReader
    {
        private readonly TaskCompletionSource _completing = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _finish = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Completing => _completing.Task;

        public void FinishCompleting() => _finish.TrySetResult();

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null)
        {
            _completing.TrySetResult();
            _finish.Task.Wait(TestTimeout.Default); // on disposal's own thread, as a slow Complete would hold it
            inner.Complete(exception);
        }

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) => inner.ReadAsync(cancellationToken);

        public override bool TryRead(out ReadResult result) => inner.TryRead(out result);
    }

    private static Task Run(Func<Task> test) => test().Within();
}
