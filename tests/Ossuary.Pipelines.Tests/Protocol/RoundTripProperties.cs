using System.Buffers;
using CsCheck;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol;

/// <summary>
/// Random conversations between an established client and server: every message arrives intact,
/// in order, as one message (boundaries kept), however the packets are cut into segments.
/// </summary>
public class RoundTripProperties
{
    private const int Iterations = 60;

    /// <summary>0 to 16,384 bytes, with the edges (empty, tiny, the maximum) drawn often.</summary>
    private static readonly Gen<int> Length = Gen.Frequency(
        (3, Gen.Int[0, OssuarySession.MaxPlaintextLength]),
        (2, Gen.Int[0, 40]),
        (1, Gen.Const(OssuarySession.MaxPlaintextLength)));

    /// <summary>(client to server?, length, content seed): content comes from the seed, so shrinking stays cheap.</summary>
    private static readonly Gen<Message[]> Conversation =
        Gen.Select(Gen.Bool, Length, Gen.Int, (toServer, length, seed) => new Message(toServer, length, seed)).Array[1, 50];

    /// <summary>Chunk sizes used in turn to cut a byte stream into segments; 0 makes an empty segment.</summary>
    private static readonly Gen<int[]> ChunkSizes = Gen.Frequency(
        (2, Gen.Int[0, 64]),
        (4, Gen.Int[1, 20_000]),
        (1, Gen.Int[1, 9])).Array[1, 12];

    [Fact]
    public void MessagesSentOneByOneArriveIntactAndInOrder()
    {
        Conversation.Sample(messages =>
        {
            using SessionPair pair = SessionPair.Established();
            foreach (Message message in messages)
            {
                pair.Pump.Send(message.ToServer ? pair.Client : pair.Server, message.Bytes());
            }

            AssertEqual(messages.Where(m => m.ToServer), pair.Pump.ServerReceived);
            AssertEqual(messages.Where(m => !m.ToServer), pair.Pump.ClientReceived);
        }, iter: Iterations);
    }

    [Fact]
    public void ConcatenatedPacketsCutIntoRandomSegmentsAreReadOnePacketAtATime()
    {
        Gen.Select(Conversation, ChunkSizes, ChunkSizes).Sample((messages, toServerCuts, toClientCuts) =>
        {
            using SessionPair pair = SessionPair.Established();
            var toServer = new ArrayBufferWriter<byte>();
            var toClient = new ArrayBufferWriter<byte>();
            var boundaries = new Dictionary<OssuarySession, List<long>> { [pair.Server] = [], [pair.Client] = [] };
            foreach (Message message in messages)
            {
                (OssuarySession from, OssuarySession to, ArrayBufferWriter<byte> wire) = message.ToServer
                    ? (pair.Client, pair.Server, toServer)
                    : (pair.Server, pair.Client, toClient);
                from.WriteData(message.Bytes(), wire);
                boundaries[to].Add(wire.WrittenCount);
            }

            AssertEqual(messages.Where(m => m.ToServer), ReadStream(pair.Server, toServer.WrittenSpan.ToArray(), toServerCuts, boundaries[pair.Server]));
            AssertEqual(messages.Where(m => !m.ToServer), ReadStream(pair.Client, toClient.WrittenSpan.ToArray(), toClientCuts, boundaries[pair.Client]));
        }, iter: Iterations);
    }

    /// <summary>
    /// Feeds <paramref name="stream"/> to <paramref name="receiver"/> as a pipe would: segments arrive
    /// one at a time, and after each arrival Receive is called until it needs more. Every call must
    /// stop exactly at the next packet boundary, and the positions it returns must slice the input.
    /// </summary>
    private static List<byte[]> ReadStream(OssuarySession receiver, byte[] stream, int[] cuts, List<long> boundaries)
    {
        var received = new List<byte[]>();
        if (stream.Length == 0)
        {
            return received;
        }

        ReadOnlySequence<byte> all = SegmentedSequence.Create(stream, cuts.Any(c => c > 0) ? cuts : [1]);
        long start = 0;
        SequencePosition startPosition = all.Start;
        int nextBoundary = 0;

        // Slicing between positions is O(1), so even tens of thousands of tiny segments stay cheap.
        for (SequencePosition cursor = all.Start, segmentStart = all.Start; all.TryGet(ref cursor, out ReadOnlyMemory<byte> segment); segmentStart = cursor)
        {
            SequencePosition arrived = all.GetPosition(segment.Length, segmentStart); // one more segment arrives
            while (true)
            {
                ReadOnlySequence<byte> input = all.Slice(startPosition, arrived);
                var plaintext = new ArrayBufferWriter<byte>();
                OssuaryReceiveResult result = receiver.Receive(input, plaintext, out SequencePosition consumed, out SequencePosition examined);
                if (result.Status == OssuaryReceiveStatus.NeedMoreData)
                {
                    Assert.Equal(input.Start, consumed);
                    Assert.Equal(input.End, examined);
                    break;
                }

                Assert.Equal(OssuaryReceiveStatus.Data, result.Status);
                long packetLength = input.Slice(input.Start, consumed).Length;
                Assert.Equal(boundaries[nextBoundary++], start + packetLength);
                Assert.Equal(consumed, examined);
                Assert.Equal(result.PlaintextLength, plaintext.WrittenCount);
                received.Add(plaintext.WrittenSpan.ToArray());
                start += packetLength;
                startPosition = consumed;
            }
        }

        Assert.Equal(stream.Length, start);
        Assert.Equal(boundaries.Count, nextBoundary);
        return received;
    }

    private static void AssertEqual(IEnumerable<Message> sent, List<byte[]> received)
    {
        byte[][] expected = [.. sent.Select(m => m.Bytes())];
        Assert.Equal(expected.Length, received.Count);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(expected[i].AsSpan().SequenceEqual(received[i]), $"message {i} of {expected.Length} ({expected[i].Length} bytes) differs");
        }
    }

    private readonly record struct Message(bool ToServer, int Length, int Seed)
    {
        public byte[] Bytes()
        {
            byte[] bytes = new byte[Length];
            new Random(Seed).NextBytes(bytes);
            return bytes;
        }

        public override string ToString() => $"{(ToServer ? "c->s" : "s->c")} {Length}B #{Seed}";
    }
}
