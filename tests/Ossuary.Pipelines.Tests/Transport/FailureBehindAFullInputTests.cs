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

    public static TheoryData<string, string> Endings => new()
    {
        { "reset", nameof(OssuaryErrorReason.ConnectionReset) },
        { "disconnect (error)", nameof(OssuaryErrorReason.ConnectionFailed) },
        { "disconnect", "clean end" },
    };

    [Theory]
    [MemberData(nameof(Endings))]
    public async Task AClientThatCompletesItsOutputWithAFullInputStillReadsThePeersFailure(string ending, string expected)
    {
        using var keys = new MutualKeys();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Task<OssuaryClientConnection> connecting = OssuaryClient.ConnectAsync((IPEndPoint)listener.LocalEndpoint, keys.ClientOptions());
        var serverOptions = new OssuarySessionOptions { Role = OssuaryRole.AuthenticatedServer, Identity = keys.Server };
        serverOptions.AuthorizedKeys.Add(keys.Client.PublicKey);
        using var server = new SessionSocketPeer(await listener.AcceptSocketAsync().Within(), new OssuarySession(serverOptions));
        await server.HandshakeAsync();
        await using OssuaryClientConnection client = await connecting.Within();

        await server.SendTogetherAsync([.. FullFrames(server), Closing(ending)]);
        await PipeReads.WaitUntilHoldsAsync(client.Transport.Input, Frames * OssuarySession.MaxPlaintextLength);
        await client.Transport.Output.CompleteAsync(); // Disconnect, with the peer's end unread behind the frames

        (string outcome, int received) = await ReadToTheEndAsync(client.Transport.Input);
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
                await PipeReads.WaitUntilHoldsAsync(connection.Transport.Input, Frames * OssuarySession.MaxPlaintextLength);
                await connection.Transport.Output.CompleteAsync();
                outcome.TrySetResult(await ReadToTheEndAsync(connection.Transport.Input));
            });
        }));

        var clientOptions = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = keys.Client };
        clientOptions.AuthorizedKeys.Add(keys.Server.PublicKey);
        using var client = new SessionSocketPeer(await RawPeer.ConnectAsync(new IPEndPoint(IPAddress.Loopback, host.Port())), new OssuarySession(clientOptions));
        await client.HandshakeAsync();
        await started.Task.Within();
        await client.SendTogetherAsync([.. FullFrames(client), Closing(ending)]);

        Assert.Equal((expected, Frames * OssuarySession.MaxPlaintextLength), await outcome.Task.Within());
    }

    private static IEnumerable<byte[]> FullFrames(SessionSocketPeer peer) =>
        [.. Enumerable.Range(0, Frames).Select(_ => peer.DataPacket(new byte[OssuarySession.MaxPlaintextLength]))];

    private static byte[] Closing(string ending) => ending switch
    {
        "reset" => Wire.Control(Wire.Reset, error: false),
        "disconnect (error)" => Wire.Control(Wire.Disconnect, error: true),
        _ => Wire.Control(Wire.Disconnect, error: false),
    };

    private static async Task<(string Outcome, int Received)> ReadToTheEndAsync(PipeReader input)
    {
        int received = 0;
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync().AsTask().Within();
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
