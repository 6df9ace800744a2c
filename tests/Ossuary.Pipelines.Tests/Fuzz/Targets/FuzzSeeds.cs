using System.Buffers.Binary;

namespace Ossuary.Pipelines.Fuzzing;

/// <summary>
/// The seed corpus of each target, made from the vectors' recorded packets: inputs that walk
/// the recorded handshakes and records, so that the fuzzer starts from deep, valid sessions and
/// mutates from there. Written to files by the fuzz program's seed mode; replayed by the tests.
/// </summary>
internal static class FuzzSeeds
{
    /// <summary>Recorded packets larger than this are left out of seeds (the fuzzer wants small inputs).</summary>
    private const int MaxSeedPacket = 512;

    public static IEnumerable<(string Name, byte[] Input)> For(string target) => target switch
    {
        FuzzTargets.Frame => FrameSeeds(),
        FuzzTargets.HandshakeServer => HandshakeServerSeeds(),
        FuzzTargets.HandshakeClient => HandshakeClientSeeds(),
        FuzzTargets.Records => RecordSeeds(),
        _ => throw new ArgumentException($"Unknown fuzz target '{target}'.", nameof(target)),
    };

    private static IEnumerable<(string, byte[])> FrameSeeds()
    {
        IReadOnlyList<FuzzVector> vectors = FuzzTargets.Vectors;
        for (int v = 0; v < vectors.Count; v++)
        {
            FuzzVector vector = vectors[v];
            byte[] ch = Recorded(vector, "ClientHandshake");
            byte[] sh = Recorded(vector, "ServerHandshake");
            byte[] ca = Recorded(vector, "ClientAuthentication");
            byte[] clientData = Concat(Small(vector, "client", "EncryptedData"));
            byte[] serverData = Concat(Small(vector, "server", "EncryptedData"));
            byte[] clientControl = Concat(Small(vector, "client", "Disconnect"), Small(vector, "client", "Reset"));
            byte[] serverControl = Concat(Small(vector, "server", "Disconnect"), Small(vector, "server", "Reset"));
            byte[][] streams =
            [
                Concat([sh]),
                Concat([sh], [serverData]),
                Concat([serverData]),
                Concat([serverData], [serverControl]),
                Concat([serverControl]),
                Concat([ch, ca], [clientData]),
                Concat([ca], [clientData]),
                Concat([clientData], [clientControl]),
                Concat([FuzzTargets.ControlPacket(OssuaryProtocolLimits.Reset, true)], [ch]),
                Concat([ch, ca]),
            ];
            for (int state = 0; state < FuzzTargets.FrameStartStates; state++)
            {
                byte start = (byte)(v * FuzzTargets.FrameStartStates + state);
                yield return ($"{vector.Name}-state{state}", [start, 0, .. streams[state]]);
                yield return ($"{vector.Name}-state{state}-drain-split", [start, 1 | (3 << 1), 3, 8, 0, .. streams[state]]);
            }
        }

        yield return ("oversized-header", [5, 0, 0xFF, 0xFF, 0, 0, 0, 1, 0, 0]);
        yield return ("unknown-type", [5, 0, 0, 4, 0, 0, 0x7F, 0x7F, 0, 0, 4, 0, 1, 0]);
    }

    private static IEnumerable<(string, byte[])> HandshakeServerSeeds()
    {
        IReadOnlyList<FuzzVector> vectors = FuzzTargets.Vectors;
        for (int v = 0; v < vectors.Count && v < 4; v++)
        {
            FuzzVector vector = vectors[v];
            byte[] ch = Recorded(vector, "ClientHandshake");
            FuzzPacket ca = vector.Packets.First(p => p.Type == "ClientAuthentication");
            var recorded = new Script((byte)v)
                .Raw(ch).Deliver().Write()
                .Raw(ca.Bytes).Deliver(4, 60).Write()
                .Raw(Concat(Small(vector, "client", "EncryptedData"))).Deliver().Write().Send(5);
            yield return ($"{vector.Name}-recorded", recorded.ToArray());
            yield return ($"{vector.Name}-recorded-drain", new Script((byte)(v | 8)).Raw(ch).Raw(ca.Bytes).Deliver(100).ToArray());

            var sealedAuth = new Script((byte)v)
                .Raw(ch).Deliver().Write()
                .Seal(data: false, messageId: 1, nonceOffset: 0, ca.Plaintext!).Deliver().Write()
                .Seal(data: true, messageId: 2, nonceOffset: 1, "hi"u8.ToArray()).Deliver();
            yield return ($"{vector.Name}-sealed", sealedAuth.ToArray());

            var timeout = new Script((byte)(v | 4))
                .Time(200).Deliver().Write()
                .Raw(FuzzTargets.ControlPacket(OssuaryProtocolLimits.Reset, true)).Deliver().Write()
                .Raw(ch).Deliver().Write().Time(130).Write()
                .Raw(ch).Deliver().Write();
            yield return ($"{vector.Name}-timeout-reset", timeout.ToArray());

            var disconnect = new Script((byte)v).Raw(ch).Deliver().Write()
                .Raw(FuzzTargets.ControlPacket(OssuaryProtocolLimits.Disconnect, false)).Deliver().Write();
            yield return ($"{vector.Name}-disconnect", disconnect.ToArray());
        }
    }

    private static IEnumerable<(string, byte[])> HandshakeClientSeeds()
    {
        IReadOnlyList<FuzzVector> vectors = FuzzTargets.Vectors;
        for (int v = 0; v < vectors.Count && v < 4; v++)
        {
            FuzzVector vector = vectors[v];
            FuzzPacket sh = vector.Packets.First(p => p.Type == "ServerHandshake");
            var recorded = new Script((byte)v)
                .Write().Raw(sh.Bytes).Deliver(10, 0, 90).Trust().Write()
                .Raw(Concat(Small(vector, "server", "EncryptedData"))).Deliver().Send(3);
            yield return ($"{vector.Name}-recorded", recorded.ToArray());

            var sealedHandshake = new Script((byte)v)
                .Write().Seal(data: false, messageId: 0, nonceOffset: 0, sh.Plaintext!).Deliver().Trust().Write()
                .Seal(data: true, messageId: 1, nonceOffset: 1, "ok"u8.ToArray()).Deliver();
            yield return ($"{vector.Name}-sealed", sealedHandshake.ToArray());

            var resetThenAgain = new Script((byte)(v | 8))
                .Write().Raw(FuzzTargets.ControlPacket(OssuaryProtocolLimits.Reset, true)).Deliver()
                .Seal(data: false, messageId: 0, nonceOffset: 0, sh.Plaintext!).Deliver().Trust().Write();
            yield return ($"{vector.Name}-reset-rehandshake", resetThenAgain.ToArray());

            var timeout = new Script((byte)v).Write().Time(130).Write().Time(1).Deliver().Write()
                .Raw(FuzzTargets.ControlPacket(OssuaryProtocolLimits.Reset, true)).Deliver().Write();
            yield return ($"{vector.Name}-timeout", timeout.ToArray());
        }
    }

    private static IEnumerable<(string, byte[])> RecordSeeds()
    {
        IReadOnlyList<FuzzVector> vectors = FuzzTargets.Vectors;
        for (int v = 0; v < vectors.Count && v < 4; v++)
        {
            FuzzVector vector = vectors[v];
            foreach (string side in new[] { "server", "client" })
            {
                string peer = FuzzVector.Other(side);
                byte config = (byte)(v | (side == "client" ? 0x10 : 0));
                ushort firstDataId = (ushort)(peer == "client" ? 2 : 1);
                byte[] peerData = Concat(Small(vector, peer, "EncryptedData"));
                yield return ($"{vector.Name}-{side}-recorded", new Script(config).Raw(peerData).Deliver(9).Send(7).Write().ToArray());
                yield return ($"{vector.Name}-{side}-sealed", new Script(config)
                    .Seal(data: true, messageId: firstDataId, nonceOffset: 1, "first"u8.ToArray())
                    .Seal(data: true, messageId: (ushort)(firstDataId + 1), nonceOffset: 2, [])
                    .Deliver(30).Send(0x8000 | 12).ToArray());
                // Above RecordCipher's 1,536-byte small-record limit the other AEAD implementation opens it.
                byte[] large = [.. Enumerable.Range(0, 1600).Select(i => (byte)i)];
                yield return ($"{vector.Name}-{side}-large", new Script(config)
                    .Seal(data: true, messageId: firstDataId, nonceOffset: 1, large)
                    .Deliver(200, 0, 100).Send(1600).ToArray());
                yield return ($"{vector.Name}-{side}-reset", new Script(config)
                    .Raw(FuzzTargets.ControlPacket(OssuaryProtocolLimits.Reset, true)).Deliver().Write().Send(1).ToArray());
                yield return ($"{vector.Name}-{side}-disconnect", new Script((byte)(config | 8))
                    .Raw(peerData).Raw(FuzzTargets.ControlPacket(OssuaryProtocolLimits.Disconnect, false)).Deliver().Write().ToArray());
                yield return ($"{vector.Name}-{side}-close", new Script(config).Close(error: true).Write().Raw(peerData).Deliver().ToArray());
            }
        }
    }

    private static byte[] Recorded(FuzzVector vector, string type) => vector.Packets.First(p => p.Type == type).Bytes;

    private static byte[][] Small(FuzzVector vector, string from, string type) =>
        [.. vector.PacketsFrom(from).Where(p => p.Type == type && p.Bytes.Length <= MaxSeedPacket).Select(p => p.Bytes)];

    private static byte[] Concat(params byte[][][] groups) => [.. groups.SelectMany(g => g).SelectMany(b => b)];

    /// <summary>Builds inputs for the script targets (see <see cref="FuzzTargets"/>).</summary>
    private sealed class Script(byte config)
    {
        private readonly List<byte> _bytes = [config];

        public Script Raw(ReadOnlySpan<byte> bytes)
        {
            _bytes.Add(0);
            AddUInt16(bytes.Length);
            _bytes.AddRange(bytes);
            return this;
        }

        public Script Seal(bool data, ushort messageId, int nonceOffset, byte[] plaintext)
        {
            _bytes.AddRange([1, data ? (byte)1 : (byte)0, (byte)messageId, (byte)nonceOffset]);
            AddUInt16(plaintext.Length);
            _bytes.AddRange(plaintext);
            return this;
        }

        public Script Deliver(params byte[] segments)
        {
            _bytes.AddRange([2, (byte)segments.Length, .. segments]);
            return this;
        }

        public Script Write()
        {
            _bytes.Add(3);
            return this;
        }

        public Script Time(byte steps)
        {
            _bytes.AddRange([4, steps]);
            return this;
        }

        public Script Trust()
        {
            _bytes.Add(5);
            return this;
        }

        public Script Close(bool error)
        {
            _bytes.AddRange([6, error ? (byte)1 : (byte)0]);
            return this;
        }

        public Script Send(int lengthAndFlag)
        {
            _bytes.Add(7);
            AddUInt16(lengthAndFlag);
            return this;
        }

        public byte[] ToArray() => [.. _bytes];

        private void AddUInt16(int value)
        {
            Span<byte> encoded = stackalloc byte[2];
            BinaryPrimitives.WriteUInt16BigEndian(encoded, (ushort)value);
            _bytes.AddRange(encoded);
        }
    }
}
