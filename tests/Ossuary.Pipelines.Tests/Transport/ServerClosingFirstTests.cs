using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>A Kestrel + <c>UseOssuary</c> server that ends the connection itself, as a request/response server does.</summary>
public class ServerClosingFirstTests
{
    [Fact]
    public async Task AServerThatEndsTheConnectionReadsACleanEndAndTheClientGetsEveryByte()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        var serverRead = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using KestrelHost host = await KestrelHost.StartOssuaryAsync(serverKey, clientKey.PublicKey, async connection =>
        {
            try
            {
                await connection.Transport.Output.WriteAsync("reply"u8.ToArray());
                await connection.Transport.Output.CompleteAsync(); // Disconnect: the server is done

                // Kestrel aborts a connection's input once its output completes; that is the end
                // the server asked for, not a failure ("The transport failed" before).
                await PipeReads.ReadToEndAsync(connection.Transport.Input);
                serverRead.TrySetResult("clean end");
            }
            catch (Exception ex)
            {
                serverRead.TrySetResult($"{ex.GetType().Name}: {ex.Message}");
            }
        });
        var options = new OssuaryClientOptions { Identity = clientKey };
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        await using OssuaryClientConnection client = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), options).Within();

        Assert.Equal("reply"u8.ToArray(), await PipeReads.ReadToEndAsync(client.Transport.Input).Within());
        Assert.Equal("clean end", await serverRead.Task.Within());
    }

    [Fact]
    public async Task AServerThatReturnsWhileTheClientIsStillSendingDeliversItsLastBytesAndDisconnect()
    {
        // The handler streams 8 MiB and returns without reading a byte of what the client keeps
        // sending; the client reads slowly. The server's socket was closed with the client's bytes
        // unread, so it sent a reset, which dropped what the server's kernel still held of the last
        // frames and the Disconnect: the client read a reset (or a truncated stream) where the
        // server had logged a clean close.
        const int Length = 8 << 20;
        using var keys = new MutualKeys();
        await using KestrelHost host = await KestrelHost.StartOssuaryAsync(keys.Server, keys.Client.PublicKey, async connection =>
        {
            byte[] chunk = new byte[64 * 1024];
            for (int sent = 0; sent < Length; sent += chunk.Length)
            {
                await connection.Transport.Output.WriteAsync(chunk);
            }
        });

        OssuaryClientConnection client = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), keys.ClientOptions()).Within();
        Task sending = Task.Run(async () =>
        {
            byte[] chunk = new byte[16 * 1024];
            while (!(await client.Transport.Output.WriteAsync(chunk)).IsCompleted)
            {
            }
        });

        (string Outcome, long Received) result;
        try
        {
            result = await ReadSlowlyToTheEndAsync(client);

            // The sender's next write finds the connection ended (a completed flush) and it stops; only
            // then is the client disposed. A write that disposal overtakes ends, as documented, with
            // InvalidOperationException ('Writing is not allowed after writer was completed').
            await sending.Within();
        }
        finally
        {
            await client.DisposeAsync().AsTask().Within();
        }

        Assert.Equal(("clean end", (long)Length), result);
    }

    [Fact]
    public async Task AClientThatSpeaksAfterTheServerSaidGoodbyeStillGetsTheServersLastBytes()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // what is still undelivered is asked of Linux's socket (SIOCOUTQ); elsewhere the window stays
        }

        // The handler streams 8 MiB and returns; the client reads slowly and sends nothing until the
        // server has said goodbye, so nothing of the client's waited unread and the server's socket
        // closed at once with its last frames still in its kernel. Then the client spoke: bytes
        // arriving at a closed socket draw a reset, which dropped those frames and the Disconnect.
        const int Length = 8 << 20;
        using var keys = new MutualKeys();
        var clientPort = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var returned = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using KestrelHost host = await KestrelHost.StartOssuaryAsync(keys.Server, keys.Client.PublicKey, async connection =>
        {
            clientPort.TrySetResult(((IPEndPoint)connection.RemoteEndPoint!).Port);
            byte[] chunk = new byte[64 * 1024];
            for (int sent = 0; sent < Length; sent += chunk.Length)
            {
                await connection.Transport.Output.WriteAsync(chunk);
            }

            returned.SetResult();
        });

        OssuaryClientConnection client = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), keys.ClientOptions()).Within();
        Task speaking = Task.Run(async () =>
        {
            int port = await clientPort.Task;
            await returned.Task;

            // The server closes its socket within moments of its Disconnect, or (fixed) keeps it open until
            // the client closes: either way, once this wait is over the client's bytes arrive after the server's check.
            await KernelTcpSockets.LeavesEstablishedAsync(host.Port(), port, TimeSpan.FromSeconds(3));
            await client.Transport.Output.WriteAsync("late"u8.ToArray());
        });

        (string Outcome, long Received) result = await ReadSlowlyToTheEndAsync(client);

        await speaking.Within();
        await client.DisposeAsync().AsTask().Within();
        Assert.Equal(("clean end", (long)Length), result);
    }

    [Fact]
    public async Task AServerWaitsForAClientThatNeverClosesNoLongerThanItsDisposalTime()
    {
        // The wait for a client still sending to close its end is bounded: one whose bytes the server
        // leaves unread when it says goodbye, and which never closes its socket, holds the server's
        // connection no longer than disposal's 5 s. The client sends 4 MiB in one write, more than
        // Kestrel's transport buffers, before the handler has read a frame of it, so the server's
        // socket holds the client's bytes unread when its Disconnect has gone: it must wait (closed
        // now, the socket would send a reset).
        using var keys = new MutualKeys();
        await using ByeServer server = await ByeServer.StartAsync(keys);
        using SessionSocketPeer client = await SessionSocketPeer.ConnectClientAsync(server.Endpoint, keys);
        byte[] frame = new byte[OssuarySession.MaxPlaintextLength];
        Task sending = client.SendTogetherAsync([.. Enumerable.Range(0, 256).Select(_ => client.DataPacket(frame))]);
        await server.FirstRead.Within();
        Assert.Equal(("bye", OssuaryErrorReason.ConnectionClosed), await ReadUntilEndedAsync(client));

        // The server's Disconnect has come and its socket is still open: it is waiting, reading and
        // discarding what the client sends (its session is over: any bytes), more than any buffer on
        // the way holds. A socket that had closed would answer them with a reset.
        await client.SendTogetherAsync(new byte[8 << 20]);
        await sending.Within();

        // The client never closes its socket: the server's disposal ends on its own bound, then its socket closes.
        await server.Disposed.Within();
        Assert.True((await RawPeer.WaitForCloseAsync(client.Socket, TestTimeout.Default)).Closed);
    }

    private static async Task<(string Plaintext, OssuaryErrorReason Ended)> ReadUntilEndedAsync(SessionSocketPeer client)
    {
        (byte[] plaintext, OssuaryErrorReason ended) = await client.ReadUntilEndedAsync();
        return (System.Text.Encoding.ASCII.GetString(plaintext), ended);
    }

    [Fact]
    public async Task AHandlerThatSaysGoodbyeWithItsInputFullSeesConnectionClosed()
    {
        // The handler leaves what the client sent unread until its input is full, completes its
        // output and waits for ConnectionClosed, as a server that is done does; the client keeps its
        // socket open. The connection must still end (at most disposal's 5 s later, the client still
        // having bytes unsent): waiting for the client's close must not wait on the full input.
        using var keys = new MutualKeys();
        var sawClose = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using KestrelHost host = await KestrelHost.StartOssuaryAsync(keys.Server, keys.Client.PublicKey, async connection =>
        {
            while (true)
            {
                System.IO.Pipelines.ReadResult read = await connection.Transport.Input.ReadAsync();
                connection.Transport.Input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
                if (read.Buffer.Length >= 128 * 1024 || read.IsCompleted)
                {
                    break; // its input is full: the connection's reading waits for room
                }
            }

            await connection.Transport.Output.CompleteAsync();
            try
            {
                await Task.Delay(Timeout.Infinite, connection.ConnectionClosed);
            }
            catch (OperationCanceledException)
            {
                sawClose.TrySetResult();
            }
        }, closeWait: ShortCloseWait.Value); // the end comes when the server's wait runs out, whatever its length

        await using OssuaryClientConnection client = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), keys.ClientOptions()).Within();
        Task<System.IO.Pipelines.FlushResult> sending = client.Transport.Output.WriteAsync(new byte[4 << 20]).AsTask();
        Assert.Empty(await PipeReads.ReadToEndAsync(client.Transport.Input).Within());
        await sawClose.Task.Within();
        await sending.Within();
    }

    [Fact]
    public async Task ConnectionClosedFiresWhenTheServersDisconnectArrivesWhileTheClientsOutputIsStuck()
    {
        // A server that says goodbye without reading what the client sent, and keeps its socket open:
        // the client's output stays stuck sending to it. Its reads saw the end and its writes returned
        // completed, but ConnectionClosed waited for both directions to stop, so until disposal: code
        // that disposes the connection once ConnectionClosed fires waited forever.
        using var keys = new MutualKeys();
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        // Both disposals, at the end, wait out their bound: the client's output is stuck, and the server never reads.
        Task<OssuaryClientConnection> connecting = OssuaryClient.ConnectAsync((IPEndPoint)listener.LocalEndpoint, keys.ClientOptions().Shortened());
        using System.Net.Sockets.Socket accepted = await listener.AcceptSocketAsync().Within();
        var serverOptions = new OssuaryServerOptions { Identity = keys.Server }.Shortened();
        serverOptions.AuthorizedClientKeys.Add(keys.Client.PublicKey);
        await using OssuaryDuplexPipe server = await OssuaryDuplexPipe.AcceptAsync(
            new StreamDuplexPipe(new System.Net.Sockets.NetworkStream(accepted), leaveOpen: true, mayStopReading: false), serverOptions).Within();
        await using OssuaryClientConnection client = await connecting.Within();

        Task<System.IO.Pipelines.FlushResult> stuck = await NeverReadingServer.WriteUntilOneWaitsAsync(client);
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using CancellationTokenRegistration registration = client.ConnectionClosed.Register(() => closed.TrySetResult());

        await server.Output.CompleteAsync(); // Disconnect
        Assert.Empty(await PipeReads.ReadToEndAsync(client.Transport.Input).Within());
        Assert.True((await stuck.Within()).IsCompleted);
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(20));
    }

    /// <summary>
    /// Reads the client's input to its end more slowly than a server sends, so that its last frames
    /// wait in its socket: how the input ended, and how many bytes came.
    /// </summary>
    private static async Task<(string Outcome, long Received)> ReadSlowlyToTheEndAsync(OssuaryClientConnection client)
    {
        long received = 0;
        try
        {
            while (true)
            {
                System.IO.Pipelines.ReadResult read = await client.Transport.Input.ReadAsync().AsTask().Within();
                received += read.Buffer.Length;
                client.Transport.Input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    return ("clean end", received);
                }

                await Task.Delay(1);
            }
        }
        catch (OssuaryException ex)
        {
            return ($"{ex.Reason}: {ex.Message}", received);
        }
    }

    /// <summary>A Kestrel host whose one listener, behind <c>UseOssuary</c> as <paramref name="server"/>, admits <paramref name="client"/> and runs <paramref name="handler"/>.</summary>
}
