using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A UseOssuary handler that completes its output with an exception while its input is full: its
/// Disconnect (error) ends the connection, and its input then reports that failure, its own, and the
/// connection is logged as it (event 5, Debug), as on a client and on a handler whose input has room.
/// </summary>
public class OwnFailureBehindAFullInputTests
{
    [Fact]
    public async Task AHandlerThatFailsWithAFullInputReadsItsOwnFailureAndItIsLogged()
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        var crash = new InvalidOperationException("the handler failed");
        var outcome = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using KestrelHost host = await KestrelHost.StartOssuaryAsync(keys.Server, keys.Client.PublicKey, async connection =>
        {
            await PipeReads.WaitUntilHoldsAsync(connection.Transport.Input, 4 * OssuarySession.MaxPlaintextLength);
            await connection.Transport.Output.CompleteAsync(crash);
            outcome.TrySetResult(await Record.ExceptionAsync(() => PipeReads.ReadToEndAsync(connection.Transport.Input)));
        }, builder => OssuaryTestServer.LogTo(logs)(builder.Services));

        using SessionSocketPeer client = await SessionSocketPeer.ConnectClientAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), keys);
        await client.SendTogetherAsync([.. Enumerable.Range(0, 4).Select(_ => client.DataPacket(new byte[OssuarySession.MaxPlaintextLength]))]);

        OssuaryException failed = Assert.IsType<OssuaryException>(await outcome.Task.Within());
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
        Assert.Same(crash, failed.InnerException);
        FakeLogRecord logged = Assert.Single(LogRecords.Records(logs, 5));
        Assert.Equal(LogLevel.Debug, logged.Level);
        Assert.Same(crash, logged.Exception?.InnerException);
    }
}
