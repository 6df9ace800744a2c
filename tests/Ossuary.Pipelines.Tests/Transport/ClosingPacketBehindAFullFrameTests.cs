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
    public static TheoryData<string, string> Endings => new()
    {
        { "reset", nameof(OssuaryErrorReason.ConnectionReset) },
        { "disconnect (error)", nameof(OssuaryErrorReason.ConnectionFailed) },
        { "disconnect", "clean end" },
    };

    [Theory]
    [MemberData(nameof(Endings))]
    public async Task AClientReadsTheFrameAndThenThePeersEnd(string ending, string expected)
    {
        using var keys = new MutualKeys();
        (SessionSocketPeer server, OssuaryClientConnection client) = await SessionSocketPeer.ServeClientAsync(keys);
        using SessionSocketPeer serverPeer = server;
        await using OssuaryClientConnection clientConnection = client;

        // The socket stays open: only the closing packet can end the client's input.
        await server.SendTogetherAsync(server.DataPacket(new byte[OssuarySession.MaxPlaintextLength]), Closing(ending));

        Assert.Equal((expected, OssuarySession.MaxPlaintextLength), await ReadToTheEndAsync(client.Transport.Input));
    }

    [Theory]
    [MemberData(nameof(Endings))]
    public async Task AServerHandlerReadsTheFramesAndThenThePeersEnd(string ending, string expected)
    {
        using var keys = new MutualKeys();
        var outcome = new TaskCompletionSource<(string, int)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using KestrelHost host = await KestrelHost.StartAsync(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.UseOssuary(o =>
            {
                o.Identity = keys.Server;
                o.AuthorizedClientKeys.Add(keys.Client.PublicKey);
            });
            listen.Run(async connection =>
            {
                started.TrySetResult();
                await go.Task;
                outcome.TrySetResult(await ReadToTheEndAsync(connection.Transport.Input));
            });
        }));

        using SessionSocketPeer client = await SessionSocketPeer.ConnectClientAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), keys);
        await started.Task.Within();

        // Six full frames: more than the input holds before its reader must make room.
        byte[][] frames = [.. Enumerable.Range(0, 6).Select(_ => client.DataPacket(new byte[OssuarySession.MaxPlaintextLength]))];
        await client.SendTogetherAsync([.. frames, Closing(ending)]);
        go.SetResult();

        Assert.Equal((expected, 6 * OssuarySession.MaxPlaintextLength), await outcome.Task.Within());
    }

    private static byte[] Closing(string ending) => ending switch
    {
        "reset" => Wire.Control(Wire.Reset, error: false),
        "disconnect (error)" => Wire.Control(Wire.Disconnect, error: true),
        _ => Wire.Control(Wire.Disconnect, error: false),
    };

    private static async Task<(string Outcome, int Received)> ReadToTheEndAsync(System.IO.Pipelines.PipeReader input)
    {
        int received = 0;
        try
        {
            while (true)
            {
                System.IO.Pipelines.ReadResult read = await input.ReadAsync().AsTask().Within();
                received += (int)read.Buffer.Length;
                input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    return ("clean end", received);
                }
            }
        }
        catch (OssuaryException ex)
        {
            return (ex.Reason.ToString(), received);
        }
    }
}
