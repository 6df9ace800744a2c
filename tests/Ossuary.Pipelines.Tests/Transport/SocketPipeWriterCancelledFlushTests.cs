using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A flush of the client's transport output (<see cref="SocketPipeWriter"/>) given up on while its socket
/// send is in flight (a peer that does not read) leaves the writer usable, as <c>PipeWriter.Create</c> over a
/// <see cref="NetworkStream"/> did: the next flush waits for that send and then sends its own bytes, and the
/// peer gets every byte once, in order. A flush after it whose send then fails reports that failure.
/// </summary>
public class SocketPipeWriterCancelledFlushTests
{
    private const int Chunk = 128 * 1024;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TheFlushAfterOneGivenUpOnUnderItsSendSendsEverythingOnce(bool byToken)
    {
        (Socket client, Socket server) = await ConnectAsync();
        var pipe = new SocketDuplexPipe(client);
        using (server)
        {
            try
            {
                var expected = new MemoryStream();
                using var cancel = new CancellationTokenSource();
                ValueTask<FlushResult> stuck = await FillUntilAFlushWaitsAsync(pipe.Output, expected, cancel.Token);
                if (byToken)
                {
                    await cancel.CancelAsync();
                    await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await stuck.Within());
                }
                else
                {
                    pipe.Output.CancelPendingFlush();
                    Assert.True((await stuck.Within()).IsCanceled);
                }

                Write(pipe.Output, expected, 16, 0xEE);
                ValueTask<FlushResult> next = pipe.Output.FlushAsync();

                // The peer reads at last: the send given up on ends, and the next flush's bytes follow it.
                Task<byte[]> receiving = ReceiveAsync(server, (int)expected.Length);
                Assert.False((await next.Within()).IsCanceled);
                Assert.Equal(expected.ToArray(), await receiving.Within());
            }
            finally
            {
                await pipe.CloseSocketAsync();
            }
        }
    }

    [Fact]
    public async Task AFlushAfterOneGivenUpOnIsToldWhenThatSendFails()
    {
        (Socket client, Socket server) = await ConnectAsync();
        var pipe = new SocketDuplexPipe(client);
        try
        {
            var expected = new MemoryStream();
            ValueTask<FlushResult> stuck = await FillUntilAFlushWaitsAsync(pipe.Output, expected, CancellationToken.None);
            pipe.Output.CancelPendingFlush();
            Assert.True((await stuck.Within()).IsCanceled);

            // The peer goes with our bytes unread: a reset, which fails the send in flight.
            server.LingerState = new LingerOption(true, 0);
            server.Dispose();

            // Nothing new to send, but what was flushed before never left: not a success.
            await Assert.ThrowsAsync<IOException>(async () => await pipe.Output.FlushAsync().Within());
        }
        finally
        {
            await pipe.CloseSocketAsync();
        }
    }

    private static async Task<(Socket Client, Socket Server)> ConnectAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { SendBufferSize = 16 * 1024 };
        await client.ConnectAsync(listener.LocalEndPoint!).Within();
        Socket server = await listener.AcceptAsync().Within();
        server.ReceiveBufferSize = 16 * 1024;
        return (client, server);
    }

    /// <summary>Writes and flushes chunks until a flush waits for the peer, which reads nothing: its send is then in flight.</summary>
    private static async Task<ValueTask<FlushResult>> FillUntilAFlushWaitsAsync(PipeWriter output, MemoryStream expected, CancellationToken cancellationToken)
    {
        for (int i = 0; i < 1000; i++)
        {
            Write(output, expected, Chunk, (byte)i);
            ValueTask<FlushResult> flush = output.FlushAsync(cancellationToken);
            if (!flush.IsCompleted)
            {
                return flush;
            }

            await flush;
        }

        throw new InvalidOperationException("The peer's receive window never filled.");
    }

    private static void Write(PipeWriter output, MemoryStream expected, int length, byte fill)
    {
        Span<byte> span = output.GetSpan(length)[..length];
        for (int i = 0; i < length; i++)
        {
            span[i] = (byte)(fill + i);
        }

        expected.Write(span);
        output.Advance(length);
    }

    private static async Task<byte[]> ReceiveAsync(Socket server, int length)
    {
        byte[] received = new byte[length];
        int total = 0;
        while (total < length)
        {
            int n = await server.ReceiveAsync(received.AsMemory(total), SocketFlags.None).AsTask().Within();
            Assert.NotEqual(0, n);
            total += n;
        }

        return received;
    }
}
