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
    [Fact]
    public async Task DisposeFromAnotherThreadEndsAWaitingFlushAndAWaitingReadAsCompleted()
    {
        using var keys = new MutualKeys();
        await using KestrelHost host = await NeverReadingServer.StartAsync(keys);
        OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(
            new IPEndPoint(IPAddress.Loopback, host.Port()), keys.ClientOptions()).Within(TimeSpan.FromSeconds(60));
        Task<ReadResult> read = Task.Run(async () => await connection.Transport.Input.ReadAsync());
        Task<FlushResult> flush = await NeverReadingServer.WriteUntilOneWaitsAsync(connection.Transport.Output);
        Assert.False(read.IsCompleted);

        await Task.Run(async () => await connection.DisposeAsync()).Within(TimeSpan.FromSeconds(60));

        Assert.True((await flush.Within(TimeSpan.FromSeconds(60))).IsCompleted);
        ReadResult ended = await read.Within(TimeSpan.FromSeconds(60));
        Assert.True(ended.IsCompleted);
        Assert.True(ended.Buffer.IsEmpty);
    }
}
