using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A real Kestrel whose transports rent from <see cref="DiagnosticMemoryPool"/>s (through the same
/// <see cref="IMemoryPoolFactory{T}"/> seam as <c>AddLargeBlockMemoryPool</c>), and clients whose
/// socket pipes rent from one too: echoes of every size, connections at once, handshakes that fail,
/// peers that reset, go silent, are disposed or aborted mid-transfer. Every byte must come back
/// intact (a block read after its return reads poison), and once the host has stopped every block
/// must have been returned, once.
/// </summary>
public class KestrelPooledMemoryTests
{
    [Theory]
    [InlineData(4096)]
    [InlineData(65536)]
    public Task EveryBlockIsReturnedOnceAndNoByteIsCorruptedWhateverEndsTheConnections(int blockSize) => Run(async () =>
    {
        var serverPools = new DiagnosticMemoryPoolFactory(blockSize);
        var clientPool = new DiagnosticMemoryPool(blockSize);
        using var keys = new MutualKeys();
        using var stranger = OssuaryIdentity.Generate();
        await using (OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(
            o => keys.ConfigureServer(o, TimeSpan.FromSeconds(3)),
            services => services.AddSingleton<IMemoryPoolFactory<byte>>(serverPools)))
        {
            await EchoEverySizeAsync(server.EndPoint, keys.ClientOptions(), clientPool);
            await Task.WhenAll(Enumerable.Range(1, 8).Select(seed => Task.Run(() => EchoOnceAsync(server.EndPoint, keys.ClientOptions(), clientPool, seed))));
            await RefusedClientAsync(server.EndPoint, keys, stranger);
            await RawPeersThatFailTheHandshakeAsync(server.EndPoint);
            await ClientResetMidTransferAsync(server.EndPoint, keys.ClientOptions(), clientPool);
            await ClientDisposedMidTransferAsync(server.EndPoint, keys.ClientOptions(), clientPool);
            await ClientAbortedMidTransferAsync(server.EndPoint, keys.ClientOptions());
        }

        Assert.True(serverPools.Rentals > 0, "Kestrel never rented from the registered pool");
        Assert.True(clientPool.Rentals > 0, "the client's socket pipes never rented from the pool");
        await serverPools.AssertAllReturnedAsync();
        await clientPool.AssertAllReturnedAsync();
    });

    private static async Task EchoEverySizeAsync(EndPoint server, OssuaryClientOptions options, DiagnosticMemoryPool pool)
    {
        await using PooledClient client = await PooledClient.ConnectAsync(server, options, pool);
        foreach (int size in PooledTransportMemoryTests.Sizes)
        {
            byte[] message = PooledTransportMemoryTests.Pattern(size, seed: size);
            await client.Secure.Output.WriteAsync(message);
            PooledTransportMemoryTests.AssertSame(message, await PipeReads.ReadExactlyAsync(client.Secure.Input, size).Within());
        }
    }

    private static async Task EchoOnceAsync(EndPoint server, OssuaryClientOptions options, DiagnosticMemoryPool pool, int seed)
    {
        await using PooledClient client = await PooledClient.ConnectAsync(server, options, pool);
        byte[] message = PooledTransportMemoryTests.Pattern(150_000 + seed, seed);
        Task<byte[]> back = PipeReads.ReadExactlyAsync(client.Secure.Input, message.Length);
        for (int offset = 0; offset < message.Length; offset += 7000)
        {
            await client.Secure.Output.WriteAsync(message.AsMemory(offset, Math.Min(7000, message.Length - offset)));
        }

        PooledTransportMemoryTests.AssertSame(message, await back.Within());
    }

    private static async Task RefusedClientAsync(EndPoint server, MutualKeys keys, OssuaryIdentity stranger)
    {
        var options = new OssuaryClientOptions { Identity = stranger };
        options.TrustedServerKeys.Add(keys.Server.PublicKey);
        await using OssuaryClientConnection refused = await OssuaryClient.ConnectAsync(server, options).Within();
        await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(refused.Transport.Input));
    }

    /// <summary>Garbage, a partial handshake cut by a reset, a connect-and-close, a silent peer the handshake timeout ends.</summary>
    private static async Task RawPeersThatFailTheHandshakeAsync(EndPoint server)
    {
        using (Socket garbage = await RawPeer.ConnectAsync(server))
        {
            await RawPeer.TrySendAsync(garbage, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
            Assert.True((await RawPeer.WaitForCloseAsync(garbage, TestTimeout.Default)).Closed);
        }

        using (Socket partial = await RawPeer.ConnectAsync(server))
        {
            byte[] header = new byte[40];
            BinaryPrimitives.WriteUInt16BigEndian(header, 200); // a plausible ClientHandshake body, never finished
            header[5] = 0x01;
            await RawPeer.TrySendAsync(partial, header);
            partial.LingerState = new LingerOption(true, 0);
        }

        using (Socket closing = await RawPeer.ConnectAsync(server))
        {
            closing.Shutdown(SocketShutdown.Send);
            Assert.True((await RawPeer.WaitForCloseAsync(closing, TestTimeout.Default)).Closed);
        }

        using Socket silent = await RawPeer.ConnectAsync(server);
        Assert.True((await RawPeer.WaitForCloseAsync(silent, TestTimeout.Default)).Closed);
    }

    /// <summary>The client's socket resets under a transfer: the server's input fails while frames are in its blocks.</summary>
    private static async Task ClientResetMidTransferAsync(EndPoint server, OssuaryClientOptions options, DiagnosticMemoryPool pool)
    {
        PooledClient client = await PooledClient.ConnectAsync(server, options, pool);
        Task writing = PooledTransportMemoryTests.WriteUntilClosedAsync(client.Secure.Output);
        await PipeReads.ReadExactlyAsync(client.Secure.Input, 100_000).Within();
        client.Socket.LingerState = new LingerOption(true, 0);
        client.Socket.Close();
        await writing.Within();
        await client.DisposeAsync();
    }

    private static async Task ClientDisposedMidTransferAsync(EndPoint server, OssuaryClientOptions options, DiagnosticMemoryPool pool)
    {
        PooledClient client = await PooledClient.ConnectAsync(server, options, pool);
        var waitingForRoom = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task writing = PooledTransportMemoryTests.WriteUntilClosedAsync(client.Secure.Output, waitingForRoom);
        await PipeReads.ReadExactlyAsync(client.Secure.Input, 100_000).Within();
        await waitingForRoom.Task.Within(); // disposed under a waiting flush, never under a write in progress
        await client.DisposeAsync();
        await writing.Within();
    }

    private static async Task ClientAbortedMidTransferAsync(EndPoint server, OssuaryClientOptions options)
    {
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server, options).Within();
        Task writing = PooledTransportMemoryTests.WriteUntilClosedAsync(connection.Transport.Output);
        await PipeReads.ReadExactlyAsync(connection.Transport.Input, 100_000).Within();
        connection.Abort(new ConnectionAbortedException("the test gave up"));
        await writing.Within();
    }

    private static Task Run(Func<Task> test) => test().Within(TimeSpan.FromSeconds(90));

    /// <summary>A client over a socket whose pipes rent from a test's pool.</summary>
    private sealed class PooledClient(Socket socket, NetworkStream stream, OssuaryDuplexPipe secure) : IAsyncDisposable
    {
        public Socket Socket => socket;

        public OssuaryDuplexPipe Secure => secure;

        public static async Task<PooledClient> ConnectAsync(EndPoint server, OssuaryClientOptions options, MemoryPool<byte> pool)
        {
            Socket socket = await RawPeer.ConnectAsync(server);
            var stream = new NetworkStream(socket, ownsSocket: true);
            var transport = new DuplexPipe(
                PipeReader.Create(stream, new StreamPipeReaderOptions(pool, bufferSize: pool.MaxBufferSize, minimumReadSize: 1024, leaveOpen: true)),
                PipeWriter.Create(stream, new StreamPipeWriterOptions(pool, minimumBufferSize: 4096, leaveOpen: true)));
            OssuaryDuplexPipe secure = await OssuaryDuplexPipe.ConnectAsync(transport, options).Within();
            return new PooledClient(socket, stream, secure);
        }

        public async ValueTask DisposeAsync()
        {
            await secure.DisposeAsync().Within();
            await stream.DisposeAsync();
        }
    }
}
