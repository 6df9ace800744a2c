using System.IO.Pipelines;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A read that <c>CancelPendingRead</c> ended is not a read the application still holds: a
/// <see cref="Pipe"/> lets its reader read again or complete without <c>AdvanceTo</c>, and
/// <c>PipeReader.AsStream()</c> never advances after one (it throws OperationCanceledException). The
/// input still counted the application as inside that read, so disposal never completed it: the
/// plaintext blocks it held were neither zeroed nor pooled until the collector found them.
/// Real Kestrel under UseOssuary (an echo) and a real client over 127.0.0.1.
/// </summary>
public sealed class CancelledReadUnderDisposalTests
{
    private const int Length = 3000;

    [Fact]
    public Task DisposalZeroesTheInputThoughTheLastReadWasCancelledAndNeverAdvanced() => Run(async () =>
    {
        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)));
        OssuaryClientConnection client = await OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()).Within();
        PipeReader input = client.Transport.Input;
        Memory<byte> block = await EchoedButUnconsumedAsync(client);

        // A read waiting for more, cancelled, and given up on: no AdvanceTo, as AsStream does.
        ValueTask<ReadResult> waiting = input.ReadAsync();
        input.CancelPendingRead();
        ReadResult cancelled = await waiting;
        Assert.True(cancelled.IsCanceled);

        await client.DisposeAsync().AsTask().Within();

        // The test's own look at the block the echo landed in (a Memory, which does not keep the block
        // rented): completed, the input gave it back to the plaintext pool, which zeroes what it takes.
        Assert.Equal(-1, block.Span.IndexOfAnyExcept((byte)0));
    });

    [Fact]
    public Task AnAdvanceToAfterACancelledReadStillWorksAndLosesNothing() => Run(async () =>
    {
        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)));
        await using OssuaryClientConnection client = await OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()).Within();
        PipeReader input = client.Transport.Input;
        await EchoedButUnconsumedAsync(client);

        ValueTask<ReadResult> waiting = input.ReadAsync();
        input.CancelPendingRead();
        ReadResult cancelled = await waiting;
        Assert.True(cancelled.IsCanceled);
        input.AdvanceTo(cancelled.Buffer.Start, cancelled.Buffer.End);

        // Nothing of the echo was consumed: the next read, once one more byte arrives, still has all of it.
        await client.Transport.Output.WriteAsync(new byte[] { 0x5A });
        byte[] back = await PipeReads.ReadExactlyAsync(input, Length + 1).Within();
        Assert.Equal(-1, back.AsSpan(0, Length).IndexOfAnyExcept((byte)0xA5));
        Assert.Equal(0x5A, back[Length]);
    });

    /// <summary>Sends <see cref="Length"/> bytes to the echo and reads them back, examined but not consumed; returns the block they are in.</summary>
    private static async Task<Memory<byte>> EchoedButUnconsumedAsync(OssuaryClientConnection client)
    {
        await client.Transport.Output.WriteAsync(Enumerable.Repeat((byte)0xA5, Length).ToArray());
        while (true)
        {
            ReadResult read = await client.Transport.Input.ReadAsync().AsTask().Within();
            Assert.False(read.IsCompleted, "the input ended early");
            if (read.Buffer.Length >= Length)
            {
                Assert.True(read.Buffer.IsSingleSegment, "the echo spans blocks"); // one frame, one block
                Memory<byte> block = System.Runtime.InteropServices.MemoryMarshal.AsMemory(read.Buffer.First);
                client.Transport.Input.AdvanceTo(read.Buffer.Start, read.Buffer.End); // a parser waiting for more
                return block;
            }

            client.Transport.Input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    private static Task Run(Func<Task> test) => test().Within();
}
