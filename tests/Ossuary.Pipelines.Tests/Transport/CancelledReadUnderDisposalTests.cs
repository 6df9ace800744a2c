using System.Buffers;
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

    /// <summary>
    /// The same read, cancelled after the peer's Disconnect had completed the input (the cancellation was
    /// asked for before the read, as <c>CancelPendingRead</c> with no read waiting leaves it): the pipe's
    /// result is both cancelled and completed, and the application, as AsStream does, never advances.
    /// Only a cancelled read that was not also completed was given back, so disposal still waited for
    /// that AdvanceTo, and the block the last bytes were in was neither zeroed nor pooled.
    /// </summary>
    [Fact]
    public Task DisposalZeroesTheInputThoughACancelledReadOfTheEndedInputWasNeverAdvanced() => Run(async () =>
    {
        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartAsync<GoodbyeConnectionHandler>(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)));
        OssuaryClientConnection client = await OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()).Within();
        PipeReader input = client.Transport.Input;

        // The goodbye and the server's Disconnect have arrived; nothing read is consumed or examined.
        Memory<byte> block;
        while (true)
        {
            ReadResult read = await input.ReadAsync().AsTask().Within();
            bool ended = read.IsCompleted;
            block = read.Buffer.IsEmpty ? default : System.Runtime.InteropServices.MemoryMarshal.AsMemory(read.Buffer.First);
            input.AdvanceTo(read.Buffer.Start);
            if (ended)
            {
                break;
            }
        }

        Assert.Equal(GoodbyeConnectionHandler.Goodbye.Length, block.Length); // one frame, one block
        input.CancelPendingRead();
        ReadResult cancelled = await input.ReadAsync().AsTask().Within();
        Assert.True(cancelled.IsCanceled);

        await client.DisposeAsync().AsTask().Within();

        Assert.Equal(-1, block.Span.IndexOfAnyExcept((byte)0));
    });

    /// <summary>After a cancelled read of the ended input, given back, the next read still has the last bytes and the end.</summary>
    [Fact]
    public Task AReadAfterACancelledReadOfTheEndedInputHasTheLastBytesAndTheEnd() => Run(async () =>
    {
        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartAsync<GoodbyeConnectionHandler>(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)));
        await using OssuaryClientConnection client = await OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()).Within();
        PipeReader input = client.Transport.Input;
        while (true)
        {
            ReadResult read = await input.ReadAsync().AsTask().Within();
            input.AdvanceTo(read.Buffer.Start);
            if (read.IsCompleted)
            {
                break;
            }
        }

        input.CancelPendingRead();
        ReadResult cancelled = await input.ReadAsync().AsTask().Within();
        Assert.True(cancelled.IsCanceled);

        ReadResult last = await input.ReadAsync().AsTask().Within();
        Assert.True(last.IsCompleted);
        Assert.Equal(GoodbyeConnectionHandler.Goodbye.ToArray(), last.Buffer.ToArray());
        input.AdvanceTo(last.Buffer.End);
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
