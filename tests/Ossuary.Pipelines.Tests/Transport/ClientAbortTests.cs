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
    [Fact]
    public async Task AbortReleasesAWriteStuckOnAServerThatStoppedReadingAndEndsReadsWithTheReason()
    {
        using var keys = new MutualKeys();
        await using KestrelHost host = await NeverReadingServer.StartAsync(keys);
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(
            new IPEndPoint(IPAddress.Loopback, host.Port()), keys.ClientOptions()).Within();
        Task<FlushResult> stuck = await NeverReadingServer.WriteUntilOneWaitsAsync(connection);
        var reason = new ConnectionAbortedException("the application gave up on the server");

        connection.Abort(reason);

        // Before, the write stayed pending until disposal gave up on the peer (ConnectionClosed had long fired).
        FlushResult flushed = await stuck.Within();
        Assert.True(flushed.IsCompleted);
        OssuaryException read = await Assert.ThrowsAsync<OssuaryException>(() => connection.Transport.Input.ReadAsync().AsTask().Within());
        Assert.Same(reason, read.InnerException);
        Assert.True(connection.ConnectionClosed.IsCancellationRequested);
    }

    [Fact]
    public async Task ReadsAfterAbortSayThisSideAbortedTheConnection()
    {
        // They said "its application completed the output with ConnectionAbortedException", as if the
        // application had failed while writing, where it had called Abort.
        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)));
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()).Within();
        var reason = new ConnectionAbortedException("the application gave up on the server");

        connection.Abort(reason);

        OssuaryException read = await Assert.ThrowsAsync<OssuaryException>(() => connection.Transport.Input.ReadAsync().AsTask().Within());
        Assert.Same(reason, read.InnerException);
        Assert.Contains("This side aborted the Ossuary connection", read.Message, StringComparison.Ordinal);
        Assert.Contains(reason.Message, read.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("completed the output", read.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AWriteMadeAfterAbortReturnsCompleted()
    {
        // Abort ends the connection now: a write made after it is told that nothing more is sent,
        // not that its bytes are on their way until the connection has finished winding down.
        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)));
        int notCompleted = 0;
        for (int i = 0; i < 20; i++)
        {
            await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()).Within();
            connection.Abort(new ConnectionAbortedException("done with it"));
            if (!(await connection.Transport.Output.WriteAsync("after the abort"u8.ToArray()).AsTask().Within()).IsCompleted)
            {
                notCompleted++;
            }
        }

        Assert.Equal(0, notCompleted);
    }
}
