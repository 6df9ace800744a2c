using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// The client's transport output (<see cref="SocketPipeWriter"/>) completed cleanly sends what it still
/// holds first; when that send fails, the writer is completed all the same: it took no more writes, and
/// its pooled buffer went back, where the failure left it open with the buffer held. Completed cleanly and
/// synchronously (<see cref="System.IO.Pipelines.PipeWriter.Complete"/>), it sends what it holds too, as the
/// stream's writer wrote it: it dropped those bytes, and the peer read a clean end without them.
/// </summary>
public class SocketPipeWriterCompletionTests
{
    [Fact]
    public async Task ACleanSynchronousCompletionSendsWhatTheWriterHolds()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!).Within();
        using Socket accepted = await listener.AcceptAsync().Within();
        var pipe = new SocketDuplexPipe(client);
        try
        {
            pipe.Output.GetSpan(16)[..16].Fill(7);
            pipe.Output.Advance(16);

            pipe.Output.Complete();
        }
        finally
        {
            await pipe.CloseSocketAsync();
        }

        // Everything up to the socket's end (a FIN: the close is graceful).
        var received = new MemoryStream();
        byte[] scratch = new byte[64];
        int n;
        while ((n = await accepted.ReceiveAsync(scratch, SocketFlags.None).Within()) > 0)
        {
            received.Write(scratch, 0, n);
        }

        Assert.Equal(Enumerable.Repeat((byte)7, 16), received.ToArray());
    }

    [Fact]
    public async Task ACleanCompletionWhoseLastSendFailsStillCompletesTheWriter()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!).Within();
        using (Socket accepted = await listener.AcceptAsync().Within())
        {
            accepted.LingerState = new LingerOption(true, 0); // closed with a reset
        }

        var pipe = new SocketDuplexPipe(client);
        try
        {
            // The reset has arrived once a read reports it: a send now fails (EPIPE).
            await Assert.ThrowsAsync<IOException>(async () => await pipe.Input.ReadAsync().AsTask().Within());
            pipe.Output.GetSpan(16)[..16].Fill(1);
            pipe.Output.Advance(16);

            await Assert.ThrowsAsync<IOException>(async () => await pipe.Output.CompleteAsync().AsTask().Within());

            Assert.Throws<InvalidOperationException>(() => pipe.Output.GetMemory());
        }
        finally
        {
            await pipe.CloseSocketAsync();
        }
    }
}
