using System.Collections.Concurrent;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Vectors;

namespace Ossuary.Pipelines.Tests.Protocol.Tampering;

/// <summary>
/// Every byte of every recorded packet, flipped in turn (xor 0xFF and xor 0x01), replayed through
/// <see cref="TamperReplayer"/>: the damage must be detected as a protocol error, or the byte must
/// be one <see cref="TamperExpectation"/> lists as ignored, with its reason. No side may ever
/// deliver a plaintext its peer did not send, or deliver them out of order.
/// </summary>
/// <remarks>
/// Coverage is exhaustive except inside large data packets: the two 16,412-byte packets of
/// vector b would take ~65k replays. For an EncryptedData packet over 1 KiB every byte of the
/// 12-byte header + blob header and of the 16-byte tag is flipped both ways, plus
/// <see cref="CiphertextSamples"/> ciphertext offsets spread evenly from first to last (xor 0xFF):
/// the AEAD treats every ciphertext byte alike, so the sample loses nothing but time.
/// Vectors with a bulk section (elided data packets) are not tampered with: their recorded calls
/// leave most packets out, so there is nothing to replay them against.
/// </remarks>
public class TamperingTests
{
    private const int FullCoverageLimit = 1024;
    private const int CiphertextSamples = 200;
    private const int TagSize = 16;
    private const int DataHeaderSize = 12;

    private static readonly ConcurrentDictionary<string, TestVector> LoadedVectors = new();

    public static TheoryData<string, int> RecordedPackets()
    {
        var data = new TheoryData<string, int>();
        foreach (string path in TestVector.AllPaths())
        {
            TestVector vector = Load(path);
            if (vector.IsBulk)
            {
                continue;
            }

            foreach (VectorPacket packet in vector.Packets)
            {
                data.Add(vector.Name, packet.Index);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(RecordedPackets))]
    public void EveryFlippedByteIsDetectedOrIsAByteTheProtocolIgnores(string vectorName, int packetIndex)
    {
        TestVector vector = LoadByName(vectorName);
        VectorPacket packet = vector.Packet(packetIndex);
        using var sides = new VectorSides(vector);
        TamperRun baseline = TamperReplayer.Run(vector, sides.Options);
        Assert.DoesNotContain(baseline.Log, d => d.Status == OssuaryReceiveStatus.Reset);
        OssuarySessionState receiverOnArrival = baseline.ReceiverStateOnArrival[packetIndex];

        foreach ((int offset, byte mask) in Flips(packet))
        {
            var tamper = new Tamper(packetIndex, offset, mask);
            TamperRun run = TamperReplayer.Run(vector, sides.Options, tamper);
            TamperExpectation expected = TamperExpectation.For(packet, offset, receiverOnArrival);
            string context = $"{vector.Name} packet {packetIndex} ({packet.Type}) byte {offset} ^ 0x{mask:x2} [{expected.Why}]\n"
                + string.Join("\n", run.Log);
            TamperAssert.OnlyRecordedPlaintextsInOrder(run, context);
            TamperAssert.Outcome(expected, packet, baseline, run, context);
        }
    }

    [Fact]
    public void FlippedByteInServerHandshakeResetsTheClient()
    {
        TestVector vector = LoadByName("a_unauth_anonymous_hello_world");
        using var sides = new VectorSides(vector);

        TamperRun run = TamperReplayer.Run(vector, sides.Options, new Tamper(PacketIndex: 1, Offset: 100, Mask: 0xFF));

        Delivery arrival = run.Log.First(d => d.PacketIndex == 1);
        Assert.Equal(("client", OssuaryReceiveStatus.Reset, OssuaryErrorReason.DecryptionFailed), (arrival.Side, arrival.Status, arrival.Reason));
        Assert.Empty(run.Received["client"]);
        Assert.Empty(run.Received["server"]);
    }

    [Fact]
    public void FlippedClientEphemeralKeyIsCaughtWhenTheClientOpensTheServerHandshake()
    {
        TestVector vector = LoadByName("b_auth_mutual_three_each_way");
        using var sides = new VectorSides(vector);

        TamperRun run = TamperReplayer.Run(vector, sides.Options, new Tamper(PacketIndex: 0, Offset: 20, Mask: 0x01));

        Assert.Equal(OssuaryReceiveStatus.Handshake, run.Log.First(d => d.PacketIndex == 0).Status);
        Delivery firstError = run.Log.First(d => d.IsError);
        Assert.Equal(("client", 1, OssuaryErrorReason.DecryptionFailed), (firstError.Side, firstError.PacketIndex, firstError.Reason));
    }

    [Fact]
    public void FlippedDisconnectErrorFlagTurnsConnectionClosedIntoConnectionFailed()
    {
        TestVector vector = LoadByName("d_client_disconnect");
        using var sides = new VectorSides(vector);
        int disconnect = vector.Packets.Single(p => p.Type == "Disconnect").Index;

        Delivery clean = TamperReplayer.Run(vector, sides.Options).Log.Single(d => d.PacketIndex == disconnect);
        Delivery flipped = TamperReplayer.Run(vector, sides.Options, new Tamper(disconnect, Offset: 10, Mask: 0x01)).Log.Single(d => d.PacketIndex == disconnect);

        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.ConnectionClosed), (clean.Status, clean.Reason));
        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.ConnectionFailed), (flipped.Status, flipped.Reason));
    }

    /// <summary>The (offset, mask) pairs to try on one packet; see the class remarks for the sampling of large data packets.</summary>
    private static IEnumerable<(int Offset, byte Mask)> Flips(VectorPacket packet)
    {
        int length = packet.Bytes.Length;
        bool sampled = packet.Type == "EncryptedData" && length > FullCoverageLimit;
        int tagStart = length - TagSize;
        for (int offset = 0; offset < length; offset++)
        {
            if (sampled && offset >= DataHeaderSize && offset < tagStart)
            {
                continue;
            }

            yield return (offset, 0xFF);
            yield return (offset, 0x01);
        }

        if (sampled)
        {
            int ciphertextLength = tagStart - DataHeaderSize;
            for (int i = 0; i < CiphertextSamples; i++)
            {
                yield return (DataHeaderSize + (int)((long)i * (ciphertextLength - 1) / (CiphertextSamples - 1)), 0xFF);
            }
        }
    }

    private static TestVector Load(string path) => LoadedVectors.GetOrAdd(path, TestVector.Load);

    private static TestVector LoadByName(string name) =>
        Load(TestVector.AllPaths().Single(p => Path.GetFileNameWithoutExtension(p) == name));

    /// <summary>The recorded configuration of both sides, built once per test; the identities are disposed with it.</summary>
    private sealed class VectorSides : IDisposable
    {
        public VectorSides(TestVector vector)
        {
            Options = new Dictionary<string, OssuarySessionOptions>
            {
                ["client"] = VectorReplayer.OptionsFor(vector, "client"),
                ["server"] = VectorReplayer.OptionsFor(vector, "server"),
            };
        }

        public IReadOnlyDictionary<string, OssuarySessionOptions> Options { get; }

        public void Dispose()
        {
            foreach (OssuarySessionOptions options in Options.Values)
            {
                options.Identity?.Dispose();
            }
        }
    }
}
