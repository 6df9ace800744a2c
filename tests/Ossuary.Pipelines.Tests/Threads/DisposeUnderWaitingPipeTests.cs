using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Threads;

/// <summary>
/// What SECURITY.md promises about disposing a connection's pipes while other threads use them:
/// a read or a flush that is waiting returns completed (a read or write in progress keeps its
/// memory until it ends: DisposalUnderACallTests).
/// </summary>
public class DisposeUnderWaitingPipeTests
{
    [Fact]
    public async Task DisposeFromAnotherThreadEndsAWaitingFlushAndAWaitingReadAsCompleted()
    {
        using var keys = new MutualKeys();
        await using KestrelHost host = await NeverReadingServer.StartAsync(keys);
        OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(
            new IPEndPoint(IPAddress.Loopback, host.Port()), keys.ClientOptions().Shortened()).Within(TimeSpan.FromSeconds(60)); // its disposal waits out the bound
        Task<ReadResult> read = Task.Run(async () => await connection.Transport.Input.ReadAsync());
        Task<FlushResult> flush = await NeverReadingServer.WriteUntilOneWaitsAsync(connection);
        Assert.False(read.IsCompleted);

        await Task.Run(async () => await connection.DisposeAsync()).Within(TimeSpan.FromSeconds(60));

        Assert.True((await flush.Within(TimeSpan.FromSeconds(60))).IsCompleted);
        ReadResult ended = await read.Within(TimeSpan.FromSeconds(60));
        Assert.True(ended.IsCompleted);
        Assert.True(ended.Buffer.IsEmpty);
    }
}
