using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// The client's transport input (<see cref="SocketPipeReader"/>) completed while a read waits ends that read
/// as any read after completion ends (<see cref="InvalidOperationException"/>), and receives nothing more. It
/// went on waiting, and every receive that ended then (bytes from the peer, its close, the socket's) started
/// another at once: the read never returned, and the thread that ran the receive's callback spun for ever.
/// </summary>
public class SocketPipeReaderCompletionTests
{
    [Fact]
    public async Task CompletingTheReaderUnderAWaitingReadEndsThatRead()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!).Within();
        using Socket server = await listener.AcceptAsync().Within();
        var pipe = new SocketDuplexPipe(client);
        try
        {
            ValueTask<ReadResult> read = pipe.Input.ReadAsync();
            Assert.False(read.IsCompleted); // the peer has sent nothing

            pipe.Input.Complete();

            await Assert.ThrowsAsync<InvalidOperationException>(async () => await read.Within());

            // What the peer sends now is nobody's: the socket's close is not held up by it.
            await server.SendAsync(new byte[] { 1, 2, 3 }, SocketFlags.None).Within();
            server.Shutdown(SocketShutdown.Send);
        }
        finally
        {
            await pipe.CloseSocketAsync().Within();
        }
    }
}
