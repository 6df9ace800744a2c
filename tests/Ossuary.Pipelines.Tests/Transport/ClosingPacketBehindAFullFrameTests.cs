using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A peer's Disconnect or Reset that arrives in the same transport read as a full frame: the
/// inbound loop hands the frame to the application and flushes before it looks at the rest, so the
/// closing packet is read on the next turn of the loop, and must still decide how the input ends.
/// </summary>
public class ClosingPacketBehindAFullFrameTests
{
    public static TheoryData<string, string> Endings => PeerEndings.All();

    [Theory]
    [MemberData(nameof(Endings))]
    public async Task AClientReadsTheFrameAndThenThePeersEnd(string ending, string expected)
    {
        using var keys = new MutualKeys();
        (SessionSocketPeer server, OssuaryClientConnection client) = await SessionSocketPeer.ServeClientAsync(keys);
        using SessionSocketPeer serverPeer = server;
        await using OssuaryClientConnection clientConnection = client;

        // The socket stays open: only the closing packet can end the client's input.
        await server.SendTogetherAsync(server.DataPacket(new byte[OssuarySession.MaxPlaintextLength]), PeerEndings.Packet(ending));

        Assert.Equal((expected, OssuarySession.MaxPlaintextLength), await PeerEndings.ReadToTheEndAsync(client.Transport.Input));
    }

    [Theory]
    [MemberData(nameof(Endings))]
    public async Task AServerHandlerReadsTheFramesAndThenThePeersEnd(string ending, string expected)
    {
        using var keys = new MutualKeys();
        var outcome = new TaskCompletionSource<(string, int)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using KestrelHost host = await KestrelHost.StartOssuaryAsync(keys.Server, keys.Client.PublicKey, async connection =>
        {
            started.TrySetResult();
            await go.Task;
            outcome.TrySetResult(await PeerEndings.ReadToTheEndAsync(connection.Transport.Input));
        });

        using SessionSocketPeer client = await SessionSocketPeer.ConnectClientAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), keys);
        await started.Task.Within();

        // Six full frames: more than the input holds before its reader must make room.
        byte[][] frames = [.. Enumerable.Range(0, 6).Select(_ => client.DataPacket(new byte[OssuarySession.MaxPlaintextLength]))];
        await client.SendTogetherAsync([.. frames, PeerEndings.Packet(ending)]);
        go.SetResult();

        Assert.Equal((expected, 6 * OssuarySession.MaxPlaintextLength), await outcome.Task.Within());
    }
}
