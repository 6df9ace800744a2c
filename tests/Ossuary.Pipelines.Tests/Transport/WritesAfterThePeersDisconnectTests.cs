using System.IO.Pipelines;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// Writes made once the peer's Disconnect has ended the connection return a completed
/// <see cref="FlushResult"/> at once; they must also hold no memory, as a <see cref="Pipe"/> whose
/// reader has completed holds none (its Advance does nothing).
/// </summary>
public class WritesAfterThePeersDisconnectTests
{
    [Fact]
    public Task WritesAfterThePeersDisconnectKeepNoBytesWhileTheOutputIsStuckOnThatPeer() => Run(async () =>
    {
        // A peer that says goodbye and then reads nothing more (its application never reads, so its
        // input is full), its socket left open: our output stays stuck sending to it. Writes after the
        // Disconnect returned completed without waiting for room and without committing, so every byte
        // of them piled up in the output's memory: an application that writes through Output.AsStream()
        // (which ignores IsCompleted) grew it without bound.
        await using TcpPipePair pair = await TcpPipePair.ConnectAsync();
        (OssuaryDuplexPipe client, OssuaryDuplexPipe server) = (pair.Client, pair.Server);

        // More than the peer's input and both sockets hold: the output loop sends it and waits there.
        Assert.False((await client.Output.WriteAsync(new byte[32 << 20]).AsTask().Within()).IsCompleted);
        await server.Output.CompleteAsync(); // Disconnect
        Assert.Empty(await PipeReads.ReadToEndAsync(client.Input).Within()); // the clean end: the connection is over

        Stream writes = client.Output.AsStream();
        byte[] chunk = new byte[1 << 20];
        for (int i = 0; i < 64; i++)
        {
            await writes.WriteAsync(chunk).AsTask().Within();
        }

        Assert.True((await client.Output.WriteAsync(chunk).AsTask().Within()).IsCompleted);
        Assert.True(client.Output.UnflushedBytes <= chunk.Length, $"{client.Output.UnflushedBytes} bytes written after the end are held");
    });

    [Fact]
    public Task AnAdvancePastTheMemoryGivenIsRefusedAfterThePeersDisconnectAsBefore() => Run(async () =>
    {
        // Once the connection has ended, Advance no longer passes the count to the pipe (so that writes
        // hold no memory), and it took any count at all: one past the memory GetMemory gave was accepted
        // in silence and counted as written, where a Pipe, its reader completed or not, refuses it.
        await using TcpPipePair pair = await TcpPipePair.ConnectAsync();
        (OssuaryDuplexPipe client, OssuaryDuplexPipe server) = (pair.Client, pair.Server);
        await server.Output.CompleteAsync(); // Disconnect
        Assert.Empty(await PipeReads.ReadToEndAsync(client.Input).Within());

        Memory<byte> memory = client.Output.GetMemory(10);
        long written = client.PlaintextWritten;
        Assert.Throws<ArgumentOutOfRangeException>(() => client.Output.Advance(memory.Length + 1));
        Assert.Equal(written, client.PlaintextWritten);

        client.Output.Advance(memory.Length); // all it was given: fine, and nothing is sent

        Memory<byte> again = client.Output.GetMemory(10);
        client.Output.Advance(again.Length - 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => client.Output.Advance(2)); // two Advances of one memory count together
        client.Output.Advance(1);
        Assert.True((await client.Output.FlushAsync().AsTask().Within()).IsCompleted);
    });

    [Fact]
    public Task AWriteWaitingForRoomWhenThePeersDisconnectArrivesReturnsCompleted() => Run(async () =>
    {
        // The same stuck peer, but the write was already waiting for room when the Disconnect came:
        // it went on waiting (until the output unstuck or disposal, up to 5 s), where a write made
        // after the Disconnect is told at once that nothing more is sent.
        await using TcpPipePair pair = await TcpPipePair.ConnectAsync();
        (OssuaryDuplexPipe client, OssuaryDuplexPipe server) = (pair.Client, pair.Server);

        Assert.False((await client.Output.WriteAsync(new byte[32 << 20]).AsTask().Within()).IsCompleted);
        ValueTask<FlushResult> waiting = client.Output.WriteAsync(new byte[1 << 20]); // more than the output's pause threshold
        Assert.False(waiting.IsCompleted);

        await server.Output.CompleteAsync(); // Disconnect
        Assert.Empty(await PipeReads.ReadToEndAsync(client.Input).Within());
        Assert.True((await waiting.AsTask().WaitAsync(TimeSpan.FromSeconds(20))).IsCompleted);
    });

    [Fact]
    public Task AStreamWriteWaitingForRoomWhenThePeersDisconnectArrivesSaysTheConnectionIsClosed() => Run(async () =>
    {
        // OssuaryStream's write over the same wait: it is to throw the closed connection's OssuaryException.
        await using TcpStreamPair pair = await TcpStreamPair.ConnectAsync();
        (OssuaryStream client, OssuaryStream server) = (pair.Client, pair.Server);

        // More than the peer's input and both sockets hold: the write goes in pieces until it waits for room.
        Task waiting = client.WriteAsync(new byte[32 << 20]).AsTask();
        Assert.False(waiting.IsCompleted);

        await server.DisposeAsync(); // Disconnect
        Assert.Equal(0, await client.ReadAsync(new byte[1]).AsTask().Within());
        OssuaryException closed = await Assert.ThrowsAsync<OssuaryException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(OssuaryErrorReason.ConnectionClosed, closed.Reason);
    });

    [Fact]
    public Task AStreamFlushWaitingWhenThePeersDisconnectArrivesSaysTheBytesWereNotSent() => Run(async () =>
    {
        // OssuaryStream.FlushAsync waits until what was written has reached the inner stream. The
        // peer said goodbye while it waited: those bytes can no longer reach it, but the flush went on
        // waiting until the output unstuck or disposal.
        GatedStream? clientGate = null;
        await using TcpStreamPair pair = await TcpStreamPair.ConnectAsync(socket => clientGate = new GatedStream(socket));
        (OssuaryStream client, OssuaryStream server) = (pair.Client, pair.Server);

        // The output stuck (a write holds no more than a piece beyond the pipe's threshold, so the
        // stuck inner stream is a shut gate rather than more bytes than the sockets hold).
        clientGate!.Shut();
        await client.WriteAsync(new byte[16 << 10]).AsTask().Within();
        Task flushing = client.FlushAsync();
        await clientGate.Waiting.Within();
        Assert.False(flushing.IsCompleted);

        await server.DisposeAsync(); // Disconnect
        Assert.Equal(0, await client.ReadAsync(new byte[1]).AsTask().Within());
        OssuaryException closed = await Assert.ThrowsAsync<OssuaryException>(() => flushing.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(OssuaryErrorReason.ConnectionClosed, closed.Reason);
        clientGate.Open(); // disposal need not wait out its 5 s on the gate
    });

    private static Task Run(Func<Task> test) => test().Within();

    /// <summary>Both ends over real sockets that neither end closes on its own (so a peer can stop reading and stay).</summary>
    private sealed class TcpPipePair : IAsyncDisposable
    {
        private readonly OssuaryIdentity _serverKey;
        private readonly NetworkStream _serverSocket;
        private readonly NetworkStream _clientSocket;

        private TcpPipePair(OssuaryIdentity serverKey, NetworkStream serverSocket, NetworkStream clientSocket, OssuaryDuplexPipe client, OssuaryDuplexPipe server)
        {
            (_serverKey, _serverSocket, _clientSocket, Client, Server) = (serverKey, serverSocket, clientSocket, client, server);
        }

        public OssuaryDuplexPipe Client { get; }

        public OssuaryDuplexPipe Server { get; }

        public static async Task<TcpPipePair> ConnectAsync()
        {
            var serverKey = OssuaryIdentity.Generate();
            (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
            var clientOptions = new OssuaryClientOptions();
            clientOptions.TrustedServerKeys.Add(serverKey.PublicKey);
            Task<OssuaryDuplexPipe> accepting = OssuaryDuplexPipe.AcceptAsync(
                new StreamDuplexPipe(serverSide, leaveOpen: true, mayStopReading: false),
                new OssuaryServerOptions { Identity = serverKey, Mode = OssuaryServerMode.Unauthenticated });
            OssuaryDuplexPipe client = await OssuaryDuplexPipe.ConnectAsync(new StreamDuplexPipe(clientSide, leaveOpen: true, mayStopReading: false), clientOptions).Within();
            return new TcpPipePair(serverKey, serverSide, clientSide, client, await accepting.Within());
        }

        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();

            // The server's socket goes with it: a client whose output is stuck on a server that never read
            // (as the tests leave it, their assertions done) then ends at once, where its disposal otherwise
            // waited out its 5 s for a socket nobody would ever read.
            _serverSocket.Dispose();
            await Client.DisposeAsync();
            _clientSocket.Dispose();
            _serverKey.Dispose();
        }
    }

    /// <summary>
    /// Both ends as <see cref="OssuaryStream"/>s over real sockets; the server's stream leaves its
    /// socket open when disposed, so that the peer's socket stays, unread.
    /// </summary>
    private sealed class TcpStreamPair : IAsyncDisposable
    {
        private readonly OssuaryIdentity _serverKey;
        private readonly NetworkStream _serverSocket;

        private TcpStreamPair(OssuaryIdentity serverKey, NetworkStream serverSocket, OssuaryStream client, OssuaryStream server)
        {
            (_serverKey, _serverSocket, Client, Server) = (serverKey, serverSocket, client, server);
        }

        public OssuaryStream Client { get; }

        public OssuaryStream Server { get; }

        /// <param name="clientInner">What the client's stream is over, given its socket's stream (a gate, say); the socket's stream itself by default.</param>
        public static async Task<TcpStreamPair> ConnectAsync(Func<NetworkStream, Stream>? clientInner = null)
        {
            var serverKey = OssuaryIdentity.Generate();
            (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
            Stream clientStream = clientInner is null ? clientSide : clientInner(clientSide);
            var pair = new TcpStreamPair(serverKey, serverSide, new OssuaryStream(clientStream), new OssuaryStream(serverSide, leaveInnerStreamOpen: true));
            var clientOptions = new OssuaryClientOptions();
            clientOptions.TrustedServerKeys.Add(serverKey.PublicKey);
            await Task.WhenAll(
                pair.Server.AuthenticateAsServerAsync(new OssuaryServerOptions { Identity = serverKey, Mode = OssuaryServerMode.Unauthenticated }),
                pair.Client.AuthenticateAsClientAsync(clientOptions)).Within();
            return pair;
        }

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            await Server.DisposeAsync();
            _serverSocket.Dispose();
            _serverKey.Dispose();
        }
    }
}
