using System.Buffers;
using System.IO.Pipelines;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A second read, or a TryRead, made while a read of the input waits is refused as any second read is,
/// and the waiting read gets the bytes. When the input was a wrapper over a pipe, a second read landing
/// while the first was being handed its result went to the pipe and took the bytes, and the first, the
/// one that kept the rule, failed with the pipe's "Reading is already in progress"; the input is now one
/// object under one lock, and these hold the rule in place.
/// </summary>
public sealed class SecondReadDuringHandOverTests
{
    [Fact]
    public async Task ASecondReadWhileTheFirstWaitsIsRefusedAndTheFirstGetsTheBytes()
    {
        var input = new PlaintextInput();
        Task<ReadResult> first = input.ReadAsync().AsTask();

        InvalidOperationException refused = await Assert.ThrowsAsync<InvalidOperationException>(() => input.ReadAsync().AsTask());
        Assert.Contains("Concurrent reads", refused.Message, StringComparison.Ordinal);

        await Task.Run(() => Deliver(input, "arrived"u8)).Within(); // the inbound loop's thread
        ReadResult read = await first.Within();
        Assert.Equal("arrived"u8.ToArray(), read.Buffer.ToArray());
        input.AdvanceTo(read.Buffer.End);
        input.CompleteWriter();
        input.Complete();
    }

    [Fact]
    public async Task ATryReadWhileAReadWaitsIsRefusedAndTheWaitingReadGetsTheBytes()
    {
        var input = new PlaintextInput();
        Task<ReadResult> waiting = input.ReadAsync().AsTask();

        InvalidOperationException refused = Assert.Throws<InvalidOperationException>(() => input.TryRead(out _));
        Assert.Contains("Concurrent reads", refused.Message, StringComparison.Ordinal);

        await Task.Run(() => Deliver(input, "arrived"u8)).Within();
        ReadResult read = await waiting.Within();
        Assert.Equal("arrived"u8.ToArray(), read.Buffer.ToArray());
        input.AdvanceTo(read.Buffer.End);
        input.CompleteWriter();
        input.Complete();
    }

    private static void Deliver(PlaintextInput input, ReadOnlySpan<byte> bytes)
    {
        input.Writer.Write(bytes);
        ValueTask<FlushResult> flushed = input.FlushAsync();
        Assert.True(flushed.IsCompletedSuccessfully);
    }
}
