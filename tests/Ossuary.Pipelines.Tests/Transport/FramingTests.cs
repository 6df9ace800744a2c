using System.IO.Pipelines;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>Packet boundaries never line up with transport reads: packets split to single bytes, and many packets in one read.</summary>
public class FramingTests
{
    [Fact]
    public Task HandshakeAndFramesDeliveredOneByteAtATimeStillArriveWhole() => Run(async () =>
    {
        var link = new LinkedPipes();
        Task relays = Task.WhenAll(
            PacketRelay.ForwardBytewiseAsync(link.Upstream.From, link.Upstream.To),
            PacketRelay.ForwardBytewiseAsync(link.Downstream.From, link.Downstream.To));
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            byte[] message = new byte[1500];
            new Random(7).NextBytes(message);

            await pair.Client.Output.WriteAsync(message);
            Assert.Equal(message, await PipeReads.ReadExactlyAsync(pair.Server.Input, message.Length));

            await pair.Server.Output.WriteAsync(message.AsMemory(0, 300));
            Assert.Equal(message[..300], await PipeReads.ReadExactlyAsync(pair.Client.Input, 300));
        }

        await relays.Within();
    });

    [Fact]
    public Task FiftyFramesArrivingInOneTransportWriteAreAllDelivered() => Run(async () =>
    {
        const int Frames = 50;
        var link = new LinkedPipes();
        var held = new List<byte[]>();
        var framesSeen = new SemaphoreSlim(0);
        int deliveries = 0;
        Task upstream = PacketRelay.ForwardAsync(link.Upstream.From, link.Upstream.To, async (packet, to) =>
        {
            if (!PacketRelay.IsData(packet))
            {
                await to.WriteAsync(packet);
                return true;
            }

            held.Add(packet);
            framesSeen.Release();
            if (held.Count == Frames)
            {
                // All fifty frames reach the server in a single write and flush.
                await to.WriteAsync(held.SelectMany(p => p).ToArray());
                held.Clear();
                deliveries++;
            }

            return true;
        });
        Task downstream = PacketRelay.ForwardAsync(link.Downstream.From, link.Downstream.To);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            var expected = new List<byte>();
            for (int i = 0; i < Frames; i++)
            {
                byte[] message = System.Text.Encoding.ASCII.GetBytes($"message {i:00};");
                expected.AddRange(message);
                await pair.Client.Output.WriteAsync(message);
                await framesSeen.WaitAsync().Within(); // one flush, one frame: wait for it before the next
            }

            Assert.Equal(expected.ToArray(), await PipeReads.ReadExactlyAsync(pair.Server.Input, expected.Count));
            Assert.Equal(1, deliveries);
        }

        await Task.WhenAll(upstream, downstream).Within();
    });

    [Fact]
    public Task WriteLargerThanOneFrameIsSplitAndReassembled() => Run(async () =>
    {
        int largest = 0;
        int frames = 0;
        var link = new LinkedPipes();
        Task upstream = PacketRelay.ForwardAsync(link.Upstream.From, link.Upstream.To, async (packet, to) =>
        {
            if (PacketRelay.IsData(packet))
            {
                frames++;
                largest = Math.Max(largest, packet.Length);
            }

            await to.WriteAsync(packet);
            return true;
        });
        Task downstream = PacketRelay.ForwardAsync(link.Downstream.From, link.Downstream.To);
        byte[] message = new byte[100_000];
        new Random(3).NextBytes(message);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            await pair.Client.Output.WriteAsync(message);
            Assert.Equal(message, await PipeReads.ReadExactlyAsync(pair.Server.Input, message.Length));
        }

        await Task.WhenAll(upstream, downstream).Within();
        Assert.Equal(16_412, largest); // the protocol's packet limit, and no more
        Assert.True(frames >= 7, $"100,000 bytes need at least 7 frames; saw {frames}");
    });

    private static Task Run(Func<Task> test) => test().Within();
}
