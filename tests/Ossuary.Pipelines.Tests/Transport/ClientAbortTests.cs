using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// <see cref="OssuaryClientConnection.Abort(ConnectionAbortedException)"/> ends the connection now, as
/// Kestrel's transports do: an application aborts a connection precisely when it is stuck, e.g. on a
/// server that stopped reading, and the write waiting there must return.
/// </summary>
public class ClientAbortTests
{
    private const int ChunkSize = 256 * 1024;

    [Fact]
    public async Task AbortReleasesAWriteStuckOnAServerThatStoppedReadingAndEndsReadsWithTheReason()
    {
        using var keys = new MutualKeys();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.UseOssuary(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)));
            listen.Run(connection => Task.Delay(Timeout.Infinite, connection.ConnectionClosed).ContinueWith(_ => { })); // never reads
        }));
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(
            new IPEndPoint(IPAddress.Loopback, host.Port()), keys.ClientOptions()).Within();
        Task<FlushResult> stuck = await WriteUntilOneWaitsAsync(connection.Transport.Output);
        var reason = new ConnectionAbortedException("the application gave up on the server");

        connection.Abort(reason);

        // Before, the write stayed pending until disposal gave up on the peer (ConnectionClosed had long fired).
        FlushResult flushed = await stuck.Within();
        Assert.True(flushed.IsCompleted);
        OssuaryException read = await Assert.ThrowsAsync<OssuaryException>(() => connection.Transport.Input.ReadAsync().AsTask().Within());
        Assert.Same(reason, read.InnerException);
        Assert.True(connection.ConnectionClosed.IsCancellationRequested);
    }

    /// <summary>Writes until a write has not returned for a while: the server's buffers and the socket's are full.</summary>
    private static async Task<Task<FlushResult>> WriteUntilOneWaitsAsync(PipeWriter output)
    {
        byte[] chunk = new byte[ChunkSize];
        for (int written = 0; written < 1024; written++) // 256 MiB: far beyond any buffer between the two
        {
            Task<FlushResult> write = output.WriteAsync(chunk).AsTask();
            if (await Task.WhenAny(write, Task.Delay(TimeSpan.FromSeconds(2))) != write)
            {
                return write;
            }
        }

        throw new InvalidOperationException("Every write returned: the server is reading after all.");
    }
}
