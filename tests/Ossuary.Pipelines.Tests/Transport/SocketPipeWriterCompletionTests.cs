using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// The client's transport output (<see cref="SocketPipeWriter"/>) completed cleanly sends what it still
/// holds first; when that send fails, the writer is completed all the same: it took no more writes, and
/// its pooled buffer went back, where the failure left it open with the buffer held.
/// </summary>
public class SocketPipeWriterCompletionTests
{
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
