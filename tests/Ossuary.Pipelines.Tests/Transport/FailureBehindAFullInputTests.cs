using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A peer's Reset or Disconnect (error) that had arrived behind frames the application had no room
/// for yet, when the application completed its output: the peer failed before it could have read our
/// Disconnect, so what we sent last may never have reached its application, and the input must not
/// end cleanly (on a client, whose input goes on once read, nor on Kestrel, whose input the Disconnect
/// stops at once so that the socket can close).
/// </summary>
public class FailureBehindAFullInputTests
{
    // Four full frames: exactly what the input holds before the inbound loop waits for room, the last
    // one arriving in the same transport read as the closing packet behind it.
    private const int Frames = 4;

    public static TheoryData<string, string> Endings => PeerEndings.All();

    [Theory]
    [MemberData(nameof(Endings))]
    public async Task AClientThatCompletesItsOutputWithAFullInputStillReadsThePeersFailure(string ending, string expected)
    {
        using var keys = new MutualKeys();
        (SessionSocketPeer server, OssuaryClientConnection client) = await SessionSocketPeer.ServeClientAsync(keys);
        using SessionSocketPeer serverPeer = server;
        await using OssuaryClientConnection clientConnection = client;

        await server.SendTogetherAsync([.. FullFrames(server), PeerEndings.Packet(ending)]);
        await PipeReads.WaitUntilHoldsAsync(client.Transport.Input, Frames * OssuarySession.MaxPlaintextLength);
        await client.Transport.Output.CompleteAsync(); // Disconnect, with the peer's end unread behind the frames

        (string outcome, int received) = await PeerEndings.ReadToTheEndAsync(client.Transport.Input);
        Assert.Equal(expected, outcome);
        Assert.Equal(Frames * OssuarySession.MaxPlaintextLength, received);
    }

    [Theory]
    [MemberData(nameof(Endings))]
    public async Task AServerHandlerThatCompletesItsOutputWithAFullInputStillReadsThePeersFailure(string ending, string expected)
    {
        using var keys = new MutualKeys();
        var outcome = new TaskCompletionSource<(string, int)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using KestrelHost host = await KestrelHost.StartOssuaryAsync(keys.Server, keys.Client.PublicKey, async connection =>
        {
            started.TrySetResult();
            await PipeReads.WaitUntilHoldsAsync(connection.Transport.Input, Frames * OssuarySession.MaxPlaintextLength);
            await connection.Transport.Output.CompleteAsync();
            outcome.TrySetResult(await PeerEndings.ReadToTheEndAsync(connection.Transport.Input));
        });

        using SessionSocketPeer client = await SessionSocketPeer.ConnectClientAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), keys);
        await started.Task.Within();
        await client.SendTogetherAsync([.. FullFrames(client), PeerEndings.Packet(ending)]);

        Assert.Equal((expected, Frames * OssuarySession.MaxPlaintextLength), await outcome.Task.Within());
    }

    private static IEnumerable<byte[]> FullFrames(SessionSocketPeer peer) =>
        [.. Enumerable.Range(0, Frames).Select(_ => peer.DataPacket(new byte[OssuarySession.MaxPlaintextLength]))];
}
