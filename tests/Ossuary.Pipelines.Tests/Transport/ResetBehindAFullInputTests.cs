using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A client whose socket reset the connection while frames it sent waited behind a full input of a
/// Kestrel handler, which then completed its output: what the client sent before the handler's
/// Disconnect can no longer be read (Kestrel's input fails with the reset), so the handler's input
/// must not end as cleanly as if it had been.
/// </summary>
public class ResetBehindAFullInputTests
{
    // Four full frames fill the handler's input; the fifth waits behind them in the transport.
    private const int Frames = 4;

    [Fact]
    public async Task AHandlerThatSaysGoodbyeAfterTheClientResetDoesNotReadACleanEnd()
    {
        using var keys = new MutualKeys();
        var outcome = new TaskCompletionSource<(string, int)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var full = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using KestrelHost host = await KestrelHost.StartOssuaryAsync(keys.Server, keys.Client.PublicKey, async connection =>
        {
            started.TrySetResult();
            await PipeReads.WaitUntilHoldsAsync(connection.Transport.Input, Frames * OssuarySession.MaxPlaintextLength);
            full.TrySetResult();

            // Kestrel's ConnectionClosed fires once its transport's input has failed with the client's reset.
            var reset = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (connection.ConnectionClosed.Register(() => reset.TrySetResult()))
            {
                await reset.Task;
            }

            await connection.Transport.Output.CompleteAsync(); // Disconnect, with the client's last frame unread
            outcome.TrySetResult(await PeerEndings.ReadToTheEndAsync(connection.Transport.Input));
        });

        using SessionSocketPeer client = await SessionSocketPeer.ConnectClientAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), keys);
        await started.Task.Within();
        await client.SendTogetherAsync([.. Enumerable.Range(0, Frames + 1).Select(_ => client.DataPacket(new byte[OssuarySession.MaxPlaintextLength]))]);
        await full.Task.Within();
        client.Socket.LingerState = new LingerOption(enable: true, seconds: 0);
        client.Socket.Close(); // a reset, not a FIN

        Assert.Equal((nameof(OssuaryErrorReason.ConnectionFailed), Frames * OssuarySession.MaxPlaintextLength), await outcome.Task.Within());
    }
}
