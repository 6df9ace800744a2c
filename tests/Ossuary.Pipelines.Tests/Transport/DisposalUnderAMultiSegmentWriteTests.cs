using System.IO.Pipelines;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// Disposal landing inside an <c>Output.WriteAsync</c> whose source takes more than one span of the
/// pipe: the write in progress ends the output as its chunk's Advance ends the call, and the next
/// chunk's GetSpan found it completed. The caller got that InvalidOperationException ("Writing is
/// not allowed after writer was completed") from the middle of its WriteAsync, where the documented
/// outcome of a write that disposal lands under is a completed <see cref="FlushResult"/>.
/// </summary>
public sealed class DisposalUnderAMultiSegmentWriteTests
{
    [Fact]
    public Task AWriteThatDisposalEndsBetweenItsSpansReportsACompletedFlush() => Run(async () =>
    {
        var pipe = new Pipe();
        PlaintextWriter? output = null;
        var inner = new NarrowWriter(pipe.Writer, onFirstAdvance: () => Assert.False(output!.CompleteFromDisposal())); // disposal, as the first span is counted
        output = new PlaintextWriter(inner);

        FlushResult flushed = await output.WriteAsync(new byte[4 * NarrowWriter.Width]).AsTask().Within();

        Assert.True(flushed.IsCompleted);
        Assert.True(inner.Advanced, "disposal never landed under the write");
        Assert.Throws<InvalidOperationException>(() => output.GetSpan()); // a write that begins now is refused, as a pipe's
    });

    [Fact]
    public Task AWriteThatBeginsAfterDisposalIsStillRefused() => Run(async () =>
    {
        var pipe = new Pipe();
        var output = new PlaintextWriter(pipe.Writer);
        Assert.True(output.CompleteFromDisposal());

        await Assert.ThrowsAsync<InvalidOperationException>(async () => await output.WriteAsync(new byte[64]));
    });

    /// <summary>
    /// Disposal landing after the write's Advance and before its FlushAsync: the call had ended, so disposal
    /// completed the output at once (committing the bytes, which go out before the Disconnect). The pipe's
    /// flush then reported the output open (not completed), and the writer's next GetMemory threw.
    /// </summary>
    [Fact]
    public Task AFlushAfterDisposalLandedBetweenAdvanceAndFlushReportsACompletedFlush() => Run(async () =>
    {
        var pipe = new Pipe();
        var output = new PlaintextWriter(pipe.Writer);
        output.GetSpan(16)[..16].Fill(0x5A);
        output.Advance(16);
        Assert.True(output.CompleteFromDisposal()); // no call in progress: completed now, the bytes committed

        FlushResult flushed = await output.FlushAsync().AsTask().Within();

        Assert.True(flushed.IsCompleted);
        ReadResult read = await pipe.Reader.ReadAsync();
        Assert.Equal(16, read.Buffer.Length);
    });

    /// <summary>A pipe's writer whose spans hold at most <see cref="Width"/> bytes, and which runs a callback as its first Advance is done.</summary>
    private sealed class NarrowWriter(PipeWriter inner, Action onFirstAdvance) : PipeWriter
    {
        public const int Width = 16;

        public bool Advanced { get; private set; }

        public override void Advance(int bytes)
        {
            inner.Advance(bytes);
            if (!Advanced)
            {
                Advanced = true;
                onFirstAdvance();
            }
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint)[..Width];

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint)[..Width];

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);
    }

    private static Task Run(Func<Task> test) => test().Within();
}
