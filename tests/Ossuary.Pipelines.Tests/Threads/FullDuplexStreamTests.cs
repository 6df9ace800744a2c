using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Threads;

/// <summary>
/// <see cref="OssuaryStream"/>'s XML doc promises what streams usually allow: one read and one write
/// in progress at once, from two threads. Both ends read on one thread while writing on another,
/// over a real socket, and every byte arrives in order.
/// </summary>
public class FullDuplexStreamTests
{
    private const int BytesEachWay = 4 * 1024 * 1024;

    [Fact]
    public async Task EachEndReadsOnOneThreadWhileWritingOnAnotherAndEveryByteArrivesInOrder()
    {
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using var keys = new MutualKeys();
        var serverOptions = new OssuaryServerOptions();
        keys.ConfigureServer(serverOptions, TimeSpan.FromSeconds(60));
        await using var server = new OssuaryStream(serverSide);
        await using var client = new OssuaryStream(clientSide);
        await Task.WhenAll(server.AuthenticateAsServerAsync(serverOptions), client.AuthenticateAsClientAsync(keys.ClientOptions())).Within(TimeSpan.FromSeconds(60));

        Thread[] threads = [Writer(client, seed: 1), Reader(server, seed: 1), Writer(server, seed: 2), Reader(client, seed: 2)];
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        foreach (Thread thread in threads)
        {
            thread.Start(failures);
        }

        foreach (Thread thread in threads)
        {
            Assert.True(thread.Join(TimeSpan.FromMinutes(3)), "a reader or writer hung");
        }

        Assert.True(failures.IsEmpty, $"{failures.Count} threads failed; the first: {failures.FirstOrDefault()}");
    }

    /// <summary>
    /// The same promise through the APM methods (BeginRead/BeginWrite), which older code (and
    /// Stream's own adapters) use. Stream's defaults run them on one semaphore, so a write begun while
    /// a read waited for the peer blocked its caller until that read ended: a client that waits to
    /// read the server's answer while it sends the request deadlocked.
    /// </summary>
    [Fact]
    public async Task AWriteBegunWhileAReadWaitsCompletesThroughTheApmMethods()
    {
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using var keys = new MutualKeys();
        var serverOptions = new OssuaryServerOptions();
        keys.ConfigureServer(serverOptions, TimeSpan.FromSeconds(60));
        await using var server = new OssuaryStream(serverSide);
        await using var client = new OssuaryStream(clientSide);
        await Task.WhenAll(server.AuthenticateAsServerAsync(serverOptions), client.AuthenticateAsClientAsync(keys.ClientOptions())).Within(TimeSpan.FromSeconds(60));

        byte[] answer = new byte[8];
        IAsyncResult reading = client.BeginRead(answer, 0, answer.Length, null, null);
        Assert.False(reading.IsCompleted); // the server has said nothing yet

        // Begun on another thread, so that a BeginWrite that blocks shows as a timeout, not a hung test.
        await Task.Run(() => client.EndWrite(client.BeginWrite("request"u8.ToArray(), 0, 7, null, null))).Within();
        byte[] request = new byte[7];
        await server.ReadExactlyAsync(request).AsTask().Within();
        await server.WriteAsync("answered"u8.ToArray()).AsTask().Within();

        int read = await Task.Run(() => client.EndRead(reading)).Within();
        Assert.Equal("answered"u8.ToArray()[..read], answer[..read]);
        Assert.Equal("request"u8.ToArray(), request);
    }

    private static byte Expected(int seed, long position) => (byte)((position * 31) + seed + (position >> 13));

    private static Thread Writer(Stream stream, int seed) => new(state => Guard(state, () =>
    {
        var random = new Random(seed);
        byte[] chunk = new byte[40_000];
        long position = 0;
        while (position < BytesEachWay)
        {
            int count = (int)Math.Min(random.Next(1, chunk.Length), BytesEachWay - position);
            for (int i = 0; i < count; i++)
            {
                chunk[i] = Expected(seed, position + i);
            }

            stream.Write(chunk, 0, count);
            position += count;
        }

        stream.Flush();
    }));

    private static Thread Reader(Stream stream, int seed) => new(state => Guard(state, () =>
    {
        byte[] buffer = new byte[23_000];
        long position = 0;
        while (position < BytesEachWay)
        {
            int read = stream.Read(buffer, 0, buffer.Length);
            Assert.True(read > 0, $"the stream ended at {position} of {BytesEachWay}");
            for (int i = 0; i < read; i++)
            {
                Assert.True(buffer[i] == Expected(seed, position + i), $"byte {position + i} is wrong");
            }

            position += read;
        }
    }));

    private static void Guard(object? failures, Action run)
    {
        try
        {
            run();
        }
        catch (Exception ex)
        {
            ((System.Collections.Concurrent.ConcurrentQueue<Exception>)failures!).Enqueue(ex);
        }
    }
}
