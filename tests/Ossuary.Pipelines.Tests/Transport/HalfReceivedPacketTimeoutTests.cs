using System.Buffers;
using System.IO.Pipelines;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A handshake step that times out while half a packet sits in the transport resets, as the
/// protocol says, and the connection recovers. Before the timeout the adapter marks the half
/// packet examined (it waits for the rest); the core's timeout then reports nothing examined, so
/// the Reset goes out before any further wait. A transport that refused that backwards examined
/// position would fail the handshake as our own fault instead; this pins that a <see cref="Pipe"/>
/// (Kestrel's transport) takes it.
/// </summary>
public class HalfReceivedPacketTimeoutTests
{
    // The server's step wait: the test holds half a packet back for one, and then every step of the
    // honest handshake that follows must beat it (at 200 ms one stall of a loaded machine could reset
    // that handshake too, and a Reset that crosses a ClientAuthentication fails it). The client's own wait
    // is longer still, so that holding its ServerHandshake back for StepTimeout does not reset it.
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan ClientStepTimeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task AStepTimeoutWithHalfAPacketBufferedResetsAndTheHandshakeRecovers()
    {
        using var keys = new MutualKeys();
        var serverOptions = new OssuaryServerOptions { HandshakeStepTimeout = StepTimeout };
        keys.ConfigureServer(serverOptions, TimeSpan.FromSeconds(30));

        // Four one-way pipes: the test carries every byte between the two ends.
        var toServer = new Pipe(new PipeOptions(useSynchronizationContext: false));
        var fromServer = new Pipe(new PipeOptions(useSynchronizationContext: false));
        var toClient = new Pipe(new PipeOptions(useSynchronizationContext: false));
        var fromClient = new Pipe(new PipeOptions(useSynchronizationContext: false));
        OssuaryClientOptions clientOptions = keys.ClientOptions();
        clientOptions.HandshakeStepTimeout = ClientStepTimeout;
        clientOptions.HandshakeTimeout = TimeSpan.FromSeconds(30);
        Task<OssuaryDuplexPipe> connecting = OssuaryDuplexPipe.ConnectAsync(new DuplexPipe(toClient.Reader, fromClient.Writer), clientOptions);

        // Half of the ClientHandshake reaches the server, and then nothing until its step times out.
        // The half is there before the server starts, so its first step cannot time out on nothing.
        byte[] hello = await ReadPacketAsync(fromClient.Reader).Within();
        await toServer.Writer.WriteAsync(hello.AsMemory(0, hello.Length / 2));
        Task<OssuaryDuplexPipe> accepting = OssuaryDuplexPipe.AcceptAsync(new DuplexPipe(toServer.Reader, fromServer.Writer), serverOptions);
        byte[] answer = await ReadPacketAsync(fromServer.Reader).Within();
        Assert.False(accepting.IsCompleted, $"the server's handshake ended instead of resetting: {accepting.Exception?.InnerException}");
        Assert.Equal(Wire.Reset, Wire.Type(answer));

        // The rest of the stale packet arrives late (the server drops it), then the Reset reaches the
        // client, and from there the two ends talk freely: a new handshake, which succeeds.
        await toServer.Writer.WriteAsync(hello.AsMemory(hello.Length / 2));
        await toClient.Writer.WriteAsync(answer);
        Task relays = Task.WhenAll(RelayAsync(fromClient.Reader, toServer.Writer), RelayAsync(fromServer.Reader, toClient.Writer));
        await using OssuaryDuplexPipe server = await accepting.Within();
        await using OssuaryDuplexPipe client = await connecting.Within();

        await client.Output.WriteAsync("after the reset"u8.ToArray());
        Assert.Equal("after the reset"u8.ToArray(), await PipeReads.ReadExactlyAsync(server.Input, 15).Within());
        Assert.Equal(keys.Client.PublicKey, server.Feature.RemotePublicKey);

        await client.DisposeAsync().AsTask().Within();
        await server.DisposeAsync().AsTask().Within();
        await relays.Within();
    }

    private static async Task<byte[]> ReadPacketAsync(PipeReader reader)
    {
        ReadResult read = await reader.ReadAtLeastAsync(Wire.HeaderSize);
        int length = Wire.HeaderSize + Wire.Length(read.Buffer.Slice(0, Wire.HeaderSize).ToArray());
        reader.AdvanceTo(read.Buffer.Start);
        read = await reader.ReadAtLeastAsync(length);
        byte[] packet = read.Buffer.Slice(0, length).ToArray();
        reader.AdvanceTo(read.Buffer.GetPosition(length));
        return packet;
    }

    private static async Task RelayAsync(PipeReader from, PipeWriter to)
    {
        while (true)
        {
            ReadResult read = await from.ReadAsync();
            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                await to.WriteAsync(segment);
            }

            from.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                await to.CompleteAsync();
                return;
            }
        }
    }
}
