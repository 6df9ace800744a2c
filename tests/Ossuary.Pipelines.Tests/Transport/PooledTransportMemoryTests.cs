using System.IO.Pipelines;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// The adapter opens frames where they lie in the transport's pooled blocks and seals frames
/// straight into them. Under a <see cref="DiagnosticMemoryPool"/>, which poisons a block when it is
/// returned, a block read after its return comes back as poison (the echo differs), one written
/// after its return breaks the poison, and a block returned twice or never is reported.
/// </summary>
public class PooledTransportMemoryTests
{
    /// <summary>1 byte to several records, around the BCL/libsodium switch (1536), the 4 KiB block and the 16 KiB record.</summary>
    public static readonly int[] Sizes =
        [1, 2, 19, 20, 21, 1535, 1536, 1537, 4075, 4076, 4095, 4096, 4097, 8192, 16383, 16384, 16385, 16412, 32768, 32769, 49153, 100_000];

    [Theory]
    [InlineData(4096)] // records span blocks: the gathering path
    [InlineData(65536)] // whole records in one block: opened where they lie, sealed into the pool's memory
    public Task EchoOfEverySizeComesBackIntactAndEveryBlockIsReturnedOnce(int blockSize) => Run(async () =>
    {
        var pool = new DiagnosticMemoryPool(blockSize);
        LinkedPipes link = LinkedPipes.Transparent(out Task relays, pool);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            Task echo = EchoAsync(pair.Server);
            foreach (int size in Sizes)
            {
                byte[] message = Pattern(size, seed: size);
                await pair.Client.Output.WriteAsync(message);
                AssertSame(message, await PipeReads.ReadExactlyAsync(pair.Client.Input, size).Within());
            }

            // All at once: frames queue in the transport and are opened several to a read.
            byte[][] burst = [.. Sizes.Select(size => Pattern(size, seed: ~size))];
            Task reading = Task.Run(async () =>
            {
                foreach (byte[] message in burst)
                {
                    AssertSame(message, await PipeReads.ReadExactlyAsync(pair.Client.Input, message.Length));
                }
            });
            foreach (byte[] message in burst)
            {
                await pair.Client.Output.WriteAsync(message);
            }

            await reading.Within();
            await pair.Client.Output.CompleteAsync();
            await echo.Within();
        }

        await relays.Within();
        Assert.True(pool.Rentals > 0, "the transport never rented from the pool");
        await pool.AssertAllReturnedAsync();
    });

    [Fact]
    public Task DisposingBothEndsMidTransferReturnsEveryBlock() => Run(async () =>
    {
        var pool = new DiagnosticMemoryPool(4096);
        LinkedPipes link = LinkedPipes.Transparent(out Task relays, pool);
        Task writing;

        // The server's disposal (its echo backed up behind a client that stopped reading) waits out its bound.
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link, closeWait: ShortCloseWait.Value))
        {
            Task echo = EchoAsync(pair.Server);
            var waitingForRoom = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            writing = WriteUntilClosedAsync(pair.Client.Output, waitingForRoom);
            await PipeReads.ReadExactlyAsync(pair.Client.Input, 100_000).Within();
            await waitingForRoom.Task.Within(); // the client stopped reading: the echo backs up to the writer
        }

        await writing.Within();
        try
        {
            await relays.Within();
        }
        catch (OperationCanceledException aborted) when (aborted.Message.Contains("while the peer was not reading", StringComparison.Ordinal))
        {
            // Under load the server's echo can back up into a full transport before the client is
            // disposed: the client's disposal then gives up on the peer after its wait and aborts
            // the transport, which the relay reads (seen once in CI). Every block must come back either way.
        }

        await pool.AssertAllReturnedAsync();
    });

    [Fact]
    public Task AForgedFrameFailsTheConnectionAndReturnsEveryBlock() => Run(async () =>
    {
        var pool = new DiagnosticMemoryPool(4096);
        var link = new LinkedPipes(pool);
        Task relays = Task.WhenAll(
            PacketRelay.ForwardAsync(link.Upstream.From, link.Upstream.To, PacketRelay.ForgingDataFrame(3)),
            PacketRelay.ForwardAsync(link.Downstream.From, link.Downstream.To));
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            Task echo = EchoAsync(pair.Server);
            // One frame, echoed before the next write (so the two writes cannot share frames), then two: the third is forged.
            await pair.Client.Output.WriteAsync(Pattern(5000, seed: 1));
            await PipeReads.ReadExactlyAsync(pair.Client.Input, 5000).Within();
            await pair.Client.Output.WriteAsync(Pattern(17000, seed: 2));

            await Assert.ThrowsAsync<OssuaryException>(() => echo.Within());
        }

        await relays.Within();
        await pool.AssertAllReturnedAsync();
    });

    [Fact]
    public Task ATransportThatEndsWithoutDisconnectReturnsEveryBlock() => Run(async () =>
    {
        var pool = new DiagnosticMemoryPool(4096);
        var link = new LinkedPipes(pool);
        int dataFrames = 0;
        Task relays = Task.WhenAll(
            PacketRelay.ForwardAsync(link.Upstream.From, link.Upstream.To, async (packet, to) =>
            {
                // The client's connection dies after its second data frame: the server sees a truncated transport.
                if (PacketRelay.IsData(packet) && ++dataFrames > 2)
                {
                    return false;
                }

                await to.WriteAsync(packet);
                return true;
            }),
            PacketRelay.ForwardAsync(link.Downstream.From, link.Downstream.To));
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            Task echo = EchoAsync(pair.Server);
            Task writing = WriteUntilClosedAsync(pair.Client.Output);
            OssuaryException ended = await Assert.ThrowsAsync<OssuaryException>(() => echo.Within());
            Assert.Equal(OssuaryErrorReason.Truncated, ended.Reason);
            await writing.Within();
        }

        await relays.Within();
        await pool.AssertAllReturnedAsync();
    });

    [Fact]
    public Task AnAbortedConnectionReturnsEveryBlock() => Run(async () =>
    {
        var pool = new DiagnosticMemoryPool(4096);
        LinkedPipes link = LinkedPipes.Transparent(out Task relays, pool);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            Task echo = EchoAsync(pair.Server);
            Task writing = WriteUntilClosedAsync(pair.Client.Output);
            await PipeReads.ReadExactlyAsync(pair.Client.Input, 50_000).Within();

            pair.Client.Abort(new Microsoft.AspNetCore.Connections.ConnectionAbortedException("the test gave up"));

            await writing.Within();
            await Assert.ThrowsAnyAsync<Exception>(() => PipeReads.ReadToEndAsync(pair.Client.Input));
        }

        await relays.Within();
        await pool.AssertAllReturnedAsync();
    });

    internal static byte[] Pattern(int size, int seed)
    {
        byte[] bytes = new byte[size];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Compares without printing 100 KB: says where the first difference is and whether it is poison.</summary>
    internal static void AssertSame(byte[] expected, byte[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        int at = expected.AsSpan().CommonPrefixLength(actual);
        Assert.True(at == expected.Length,
            $"byte {at} of {expected.Length} differs: 0x{(at < actual.Length ? actual[at] : 0):X2} where 0x{(at < expected.Length ? expected[at] : 0):X2} was sent"
            + (at < actual.Length && actual[at] == DiagnosticMemoryPool.Poison ? " (the pool's poison: read after it was returned)" : ""));
    }

    /// <summary>Sends every byte back until the input ends; throws what the input throws.</summary>
    internal static async Task EchoAsync(IDuplexPipe connection)
    {
        while (true)
        {
            ReadResult read = await connection.Input.ReadAsync();
            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                await connection.Output.WriteAsync(segment);
            }

            connection.Input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Writes 20 KB at a time until the output reports the connection closed (or throws it).
    /// <paramref name="waitingForRoom"/> is set once a write waits for room (its bytes copied, its
    /// flush pending): the moment these tests dispose the connection, so that the blocks they count
    /// are a waiting flush's (a write in progress at disposal is DisposalUnderACallTests' case).
    /// </summary>
    internal static async Task WriteUntilClosedAsync(PipeWriter output, TaskCompletionSource? waitingForRoom = null)
    {
        byte[] chunk = Pattern(20_000, seed: 1);
        try
        {
            while (true)
            {
                ValueTask<FlushResult> write = output.WriteAsync(chunk);
                if (!write.IsCompleted)
                {
                    waitingForRoom?.TrySetResult();
                }

                if ((await write).IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is OssuaryException or InvalidOperationException or OperationCanceledException)
        {
            // A write after the end (a reset, an abort) finds the pipe completed: that is the end being tested.
        }
        finally
        {
            waitingForRoom?.TrySetResult(); // ended without waiting: the test goes on and finds out why
        }
    }

    private static Task Run(Func<Task> test) => test().Within(TimeSpan.FromSeconds(60));
}
