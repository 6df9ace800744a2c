using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Threads;

/// <summary>
/// What SECURITY.md promises about disposing a connection's pipes while other threads use them:
/// disposal may end a read or a flush that is waiting (both return completed),
/// not a write between GetMemory and FlushAsync (which completing the writer would fail, and whose
/// memory could go back to the pool), so the table no longer says "while they are in use".
/// </summary>
public class DisposeUnderWaitingPipeTests
{
    private const int ChunkSize = 256 * 1024;

    [Fact]
    public async Task DisposeFromAnotherThreadEndsAWaitingFlushAndAWaitingReadAsCompleted()
    {
        using var keys = new MutualKeys();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.UseOssuary(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(30)));
            listen.Run(connection => Task.Delay(Timeout.Infinite, connection.ConnectionClosed).ContinueWith(_ => { })); // never reads, never writes
        }));
        OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(
            new IPEndPoint(IPAddress.Loopback, host.Port()), keys.ClientOptions()).Within(TimeSpan.FromSeconds(60));
        Task<ReadResult> read = Task.Run(async () => await connection.Transport.Input.ReadAsync());
        Task<FlushResult> flush = await WriteUntilOneWaitsAsync(connection.Transport.Output);
        Assert.False(read.IsCompleted);

        await Task.Run(async () => await connection.DisposeAsync()).Within(TimeSpan.FromSeconds(60));

        Assert.True((await flush.Within(TimeSpan.FromSeconds(60))).IsCompleted);
        ReadResult ended = await read.Within(TimeSpan.FromSeconds(60));
        Assert.True(ended.IsCompleted);
        Assert.True(ended.Buffer.IsEmpty);
    }

    /// <summary>Writes from the thread pool until a write has not returned for a while: the server's buffers and the socket's are full.</summary>
    private static async Task<Task<FlushResult>> WriteUntilOneWaitsAsync(PipeWriter output)
    {
        byte[] chunk = new byte[ChunkSize];
        for (int written = 0; written < 1024; written++) // 256 MiB: far beyond any buffer between the two
        {
            Task<FlushResult> write = Task.Run(async () => await output.WriteAsync(chunk));
            if (await Task.WhenAny(write, Task.Delay(TimeSpan.FromSeconds(2))) != write)
            {
                return write;
            }

            await write;
        }

        throw new InvalidOperationException("Every write returned: the server is reading after all.");
    }
}
