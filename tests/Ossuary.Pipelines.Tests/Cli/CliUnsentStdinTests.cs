using System.Diagnostics;
using System.IO.Pipes;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// The end of stdin says only that every byte of it was handed to the connection: a peer that stopped
/// reading and then closed leaves the last of them queued in the process, never sent. A session that
/// ends with bytes of stdin left behind is no clean close.
/// </summary>
[Collection(CliCollection.Name)]
public sealed partial class CliUnsentStdinTests : CliTestBase
{
    private const int Chunk = 16 * 1024;

    [Theory]
    [InlineData("connect")]
    [InlineData("listen")]
    public async Task ASessionWhosePeerClosesWithTheLastBytesOfStdinStillQueuedFails(string command)
    {
        // The tool is the client (connect) or the server (listen); its peer, raw, the other.
        (ToolProcess tool, SessionSocketPeer opened, int toolPort, int peerPort) = command == "connect" ? await ConnectToPeerAsync() : await ListenForPeerAsync();
        using SessionSocketPeer peer = opened;

        // The peer reads nothing: stdin goes to the tool in chunks until its socket can take no more
        // (the kernel's queues are full, for as long as the peer does not read) and bytes written to
        // stdin are certainly still in the process: stdin's, less what it has not read, less every byte
        // queued in the kernel (sealed, so no fewer than the plaintext in them).
        var stdin = (PipeStream)tool.StdinStream;
        byte[] chunk = new byte[16 * Chunk];
        long written = 0;
        await Task.Run(async () =>
        {
            int size = Chunk;
            while (true)
            {
                await stdin.WriteAsync(chunk.AsMemory(0, size));
                await stdin.FlushAsync();
                written += size;
                Queues queues;
                while (!((queues = Measure(stdin, peer.Socket, toolPort, peerPort)).Kernel >= written || queues.ClientSocketFull))
                {
                    await Task.Delay(10); // the chunk on its way to the kernel's queues, or the socket filling
                }

                if (queues.ClientSocketFull && written - queues.StdinUnread - queues.Kernel > 0)
                {
                    return;
                }

                // Far from full (the room counts memory, more than the bytes it holds), larger chunks
                // save time; near it, small ones leave few bytes in the process once it is full.
                size = queues.ClientSocketRoom > 4 * chunk.Length ? chunk.Length : Chunk;
            }
        }).Within();

        // The last bytes, well within what the connection's output takes without waiting: the tool
        // reads them and the end of stdin, and its session counts everything handed to the connection.
        await stdin.WriteAsync(chunk.AsMemory(0, 4096));
        await stdin.FlushAsync();
        written += 4096;
        await Task.Run(async () =>
        {
            while (Measure(stdin, peer.Socket, toolPort, peerPort).StdinUnread > 0)
            {
                await Task.Delay(10);
            }
        }).Within();
        tool.CloseStdin();

        // The peer closes cleanly, without reading: once the tool has taken its Disconnect from its
        // socket, the peer's socket closes with the tool's bytes unread (a reset), and the tool's
        // write still waiting for room fails. What was left in the tool was never sent.
        await peer.SendTogetherAsync(Wire.Control(Wire.Disconnect, error: false));
        Queues left = await Task.Run(async () =>
        {
            Queues queues;
            while ((queues = Measure(stdin: null, peer.Socket, toolPort, peerPort)).ServerUnacknowledged > 0 || queues.ClientUnread > 0)
            {
                await Task.Delay(10);
            }

            return queues;
        }).Within();

        Assert.True(written - left.Kernel > 0, $"{left.Kernel} bytes queued in the kernel of the {written} written: all of stdin may have been sent");
        peer.Socket.LingerState = new LingerOption(true, 0);
        peer.Socket.Close();
        ToolResult result = await tool.WaitForExitAsync();

        // Before: exit 0, as for a clean close. (A tool that sees the Disconnect before the end of its stdin
        // says the rest of stdin was not sent: a failure too.)
        AssertFails(result, 1, "stdin", "not sent");
    }

    /// <summary>A real <c>connect</c> to a raw server with a small receive buffer.</summary>
    private async Task<(ToolProcess Tool, SessionSocketPeer Peer, int ToolPort, int PeerPort)> ConnectToPeerAsync()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Server.ReceiveBufferSize = Chunk; // the accepted socket's too: its window closes early
        listener.Start();
        int serverPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        ToolProcess client = Start("connect", $"127.0.0.1:{serverPort}", "--trust", serverKey.PublicKey.ToString(), "--wait", "forever");
        var server = new SessionSocketPeer(
            await listener.AcceptSocketAsync().Within(),
            new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.UnauthenticatedServer, Identity = serverKey }));
        await server.HandshakeAsync();
        return (client, server, ((IPEndPoint)server.Socket.RemoteEndPoint!).Port, serverPort);
    }

    /// <summary>A real <c>listen --once</c> and a raw client with a small receive buffer.</summary>
    private async Task<(ToolProcess Tool, SessionSocketPeer Peer, int ToolPort, int PeerPort)> ListenForPeerAsync()
    {
        ToolProcess listening = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once", "--wait", "forever");
        int serverPort = ServerPort(listening);
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = Chunk };
        await socket.ConnectAsync(IPAddress.Loopback, serverPort).Within();
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client };
        options.AuthorizedKeys.Add(OssuaryPublicKey.Parse(ServerKey(listening)));
        var client = new SessionSocketPeer(socket, new OssuarySession(options));
        await client.HandshakeAsync();
        return (listening, client, serverPort, ((IPEndPoint)socket.LocalEndPoint!).Port);
    }

    /// <summary>Where the bytes written to the tool's stdin are, as far as the kernel can tell.</summary>
    /// <param name="StdinUnread">Bytes in the stdin pipe the tool has not read.</param>
    /// <param name="Kernel">Bytes in the tool socket's send queue and the peer socket's receive queue.</param>
    /// <param name="ClientSocketRoom">The tool socket's send buffer less the memory its queue takes.</param>
    /// <param name="ClientUnread">Bytes in the tool socket's receive queue.</param>
    /// <param name="ServerUnacknowledged">Bytes the peer sent that the tool's socket has not acknowledged.</param>
    private sealed record Queues(long StdinUnread, long Kernel, long ClientSocketRoom, long ClientUnread, long ServerUnacknowledged)
    {
        /// <summary>The tool's socket holds as much as its send buffer allows: a write to it waits.</summary>
        public bool ClientSocketFull => ClientSocketRoom <= 0;
    }

    private static Queues Measure(PipeStream? stdin, Socket peer, int toolPort, int peerPort)
    {
        int unread = 0;
        if (stdin is not null)
        {
            Assert.Equal(0, Ioctl((int)stdin.SafePipeHandle.DangerousGetHandle(), FionRead, out unread));
        }

        // Per socket, "Recv-Q Send-Q local peer", then "skmem:(r..,rb..,t..,tb<send buffer>,f..,w<queued in it>,...)".
        using var ss = Process.Start(new ProcessStartInfo("ss")
        {
            ArgumentList = { "-tnmH", "state", "established", $"( sport = :{toolPort} and dport = :{peerPort} ) or ( sport = :{peerPort} and dport = :{toolPort} )" },
            RedirectStandardOutput = true,
        })!;
        string output = ss.StandardOutput.ReadToEnd();
        ss.WaitForExit();
        Match toolSide = SocketLine().Matches(output).FirstOrDefault(line => line.Groups["local"].Value == $"127.0.0.1:{toolPort}")
            ?? throw new InvalidOperationException($"no line for the tool's socket from ss:\n{output}");
        Match peerSide = SocketLine().Matches(output).FirstOrDefault(line => line.Groups["local"].Value == $"127.0.0.1:{peerPort}")
            ?? throw new InvalidOperationException($"no line for the peer's socket from ss:\n{output}");
        return new Queues(
            unread,
            Number(toolSide, "sendq") + peer.Available,
            Number(toolSide, "tb") - Number(toolSide, "w"),
            Number(toolSide, "recvq"),
            Number(peerSide, "sendq"));

        static long Number(Match line, string group) => long.Parse(line.Groups[group].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private const nuint FionRead = 0x541B;

    [DllImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static extern int Ioctl(int fd, nuint request, out int count);

    [GeneratedRegex(@"^\s*(?<recvq>\d+)\s+(?<sendq>\d+)\s+(?<local>\S+)\s+\S+\s+skmem:\(r\d+,rb\d+,t\d+,tb(?<tb>\d+),f\d+,w(?<w>\d+),", RegexOptions.Multiline)]
    private static partial Regex SocketLine();
}
