using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Operations;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A Kestrel + UseOssuary server that completes the handshake and then neither reads nor writes,
/// so that a client's writes back up until one waits: the stalled peer that Abort and disposal
/// must be able to end.
/// </summary>
internal static class NeverReadingServer
{
    // One write: more than the server can ever take of what it does not read. Linux grows a socket's
    // receive buffer to 32 MiB at most (tcp_rmem, and only while its application reads), the client's
    // send buffer to 4 MiB (tcp_wmem); the server's own buffers (Kestrel's input, the connection's) hold
    // little more than 1 MiB.
    private const int ChunkSize = 64 << 20;

    // Linux's TCP_INFO (struct tcp_info): tcpi_snd_wnd, the receive window the peer last advertised (Linux 5.4 and later).
    private const int IpProtocolTcp = 6;
    private const int TcpInfo = 11;
    private const int SendWindowOffset = 228;

    // Its connection never ends by itself (a server that does not read never sees the client go), and
    // stopping the host waits for it until the host's shutdown timeout, 30 s by default. The test is
    // done with the server by then: the host gives up on the connection after a second instead.
    public static Task<KestrelHost> StartAsync(MutualKeys keys) =>
        KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.UseOssuary(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(30)));
                listen.Run(connection => Task.Delay(Timeout.Infinite, connection.ConnectionClosed).ContinueWith(_ => { }));
            }),
            builder => builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(1)));

    /// <summary>
    /// Writes to <paramref name="connection"/> from the thread pool until a write waits on a server
    /// that has stopped taking bytes, and returns that write, still pending. Stuck, not slow: the
    /// write waits behind bytes the server can never take, and is handed back while the client's
    /// socket can take nothing more (its send buffer is full) and the server's kernel says its own
    /// buffer is full too (it advertises a zero window).
    /// </summary>
    /// <remarks>
    /// The kernel's word alone was not enough: a server only late to read (its loops not yet run on a
    /// loaded machine, its input not yet full) reopened its window afterwards, and the client's outbound
    /// loop, whose send had just filled the socket, went on to take the write it waited behind; either
    /// way the write taken for stuck returned by itself, and a caller's assertion that Abort, disposal or
    /// the server's Disconnect ended it failed for nothing (ServerClosingFirstTests, 1 run in 6 under load).
    /// Each write is now more than the server and both sockets can ever hold (<see cref="ChunkSize"/>):
    /// the outbound loop takes a write whole and seals it before it sends, so the first write returns
    /// and the next waits behind megabytes that nothing will take until the connection ends.
    /// </remarks>
    public static async Task<Task<FlushResult>> WriteUntilOneWaitsAsync(OssuaryClientConnection connection)
    {
        Socket socket = SocketOf(connection);
        PipeWriter output = connection.Transport.Output;
        byte[] chunk = new byte[ChunkSize];
        for (int written = 0; written < 4; written++) // 256 MiB: the second write must wait already
        {
            // Returned only once WriteAsync has been called: a write still queued on a busy thread pool
            // when the socket filled (from earlier writes) would start after the test ended the connection,
            // and fail as a write to a completed pipe instead of returning as the stuck write should.
            var called = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Task<FlushResult> write = Task.Run(async () =>
            {
                ValueTask<FlushResult> flush = output.WriteAsync(chunk);
                called.SetResult();
                return await flush;
            });
            await called.Task;
            while (!write.IsCompleted)
            {
                if (written > 0 && !socket.Poll(0, SelectMode.SelectWrite) && PeerWindow(socket) == 0 && !write.IsCompleted)
                {
                    return write;
                }

                await Task.WhenAny(write, Task.Delay(20)); // looked at again when the write returns, or soon
            }

            await write;
        }

        throw new InvalidOperationException("Every write returned: the server is reading after all.");
    }

    /// <summary>The window the socket's peer last advertised, in bytes: 0 while its receive buffer is full.</summary>
    private static uint PeerWindow(Socket socket)
    {
        Span<byte> info = stackalloc byte[SendWindowOffset + 4];
        int length = socket.GetRawSocketOption(IpProtocolTcp, TcpInfo, info);
        Assert.True(length >= SendWindowOffset + 4, $"TCP_INFO has {length} bytes, without tcpi_snd_wnd (Linux 5.4 and later)");
        return BinaryPrimitives.ReadUInt32LittleEndian(info[SendWindowOffset..]);
    }

    /// <summary>The client connection's socket (its transport's), to ask the kernel about.</summary>
    private static Socket SocketOf(OssuaryClientConnection connection)
    {
        const BindingFlags Private = BindingFlags.Instance | BindingFlags.NonPublic;
        object pipe = typeof(OssuaryClientConnection).GetField("_socketPipe", Private)!.GetValue(connection)!;
        FieldInfo socket = pipe.GetType().GetFields(Private).Single(f => f.FieldType == typeof(Socket));
        return (Socket)socket.GetValue(pipe)!;
    }
}
