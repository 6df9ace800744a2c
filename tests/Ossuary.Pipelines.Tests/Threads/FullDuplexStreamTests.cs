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
