using System.IO.Pipelines;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// Disposal landing inside an <c>Output.WriteAsync</c> whose source takes more than one span of the
/// output: the write in progress ends the output as its chunk's Advance ends the call, and the next
/// chunk's GetSpan found it completed. The caller got that InvalidOperationException ("Writing is
/// not allowed after writer was completed") from the middle of its WriteAsync, where the documented
/// outcome of a write that disposal lands under is a completed <see cref="FlushResult"/>.
/// </summary>
public sealed class DisposalUnderAMultiSegmentWriteTests
{
    // Two blocks' worth: the first GetSpan gives a 4 KiB block, so the copy takes a second span.
    private const int Source = 2 * 4096;

    [Fact]
    public Task AWriteThatDisposalEndsBetweenItsSpansReportsACompletedFlush() => Run(async () =>
    {
        var output = new PlaintextOutput();
        bool landed = false;
        PlaintextOutput.BetweenSpansForTests = seen =>
        {
            if (ReferenceEquals(seen, output) && !landed)
            {
                landed = true;
                Assert.True(output.CompleteFromDisposal()); // disposal, as the first span is counted and the call has ended
            }
        };

        try
        {
            FlushResult flushed = await output.WriteAsync(new byte[Source]).AsTask().Within();

            Assert.True(flushed.IsCompleted);
            Assert.True(landed, "disposal never landed under the write");
            Assert.Throws<InvalidOperationException>(() => output.GetSpan()); // a write that begins now is refused, as a pipe's
        }
        finally
        {
            PlaintextOutput.BetweenSpansForTests = null;
        }
    });

    [Fact]
    public Task AWriteThatBeginsAfterDisposalIsStillRefused() => Run(async () =>
    {
        var output = new PlaintextOutput();
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
        var output = new PlaintextOutput();
        output.GetSpan(16)[..16].Fill(0x5A);
        output.Advance(16);
        Assert.True(output.CompleteFromDisposal()); // no call in progress: completed now, the bytes committed

        FlushResult flushed = await output.FlushAsync().AsTask().Within();

        Assert.True(flushed.IsCompleted);
        ReadResult read = await output.ReadOutboundAsync().AsTask().Within();
        Assert.Equal(16, read.Buffer.Length);
    });

    private static Task Run(Func<Task> test) => test().Within();
}
