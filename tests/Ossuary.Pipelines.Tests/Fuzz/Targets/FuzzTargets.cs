using System.Buffers.Binary;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Fuzzing;

/// <summary>
/// The fuzz targets. Each takes the fuzzer's input, drives a vector-seeded session with it and
/// throws on any broken invariant (every exception that escapes is a crash to the fuzzer). The
/// fuzz program (tests/fuzz) and the regression tests (tests/Ossuary.Pipelines.Tests/Fuzz) run
/// this same code.
/// </summary>
/// <summary>How a fuzz run ended.</summary>
internal readonly record struct FuzzOutcome(string Vector, OssuaryRole Role, OssuarySessionState State, OssuaryErrorReason LastError, int Resets, int Receives, int DataResults, bool WasEstablished);

internal static class FuzzTargets
{
    public const string Frame = "frame";
    public const string HandshakeServer = "handshake-server";
    public const string HandshakeClient = "handshake-client";
    public const string Records = "records";

    /// <summary>At most this many script operations run per input, so one input costs bounded time.</summary>
    public const int MaxOperations = 64;

    /// <summary>Session states the frame target starts from.</summary>
    public const int FrameStartStates = 10;

    private static IReadOnlyList<FuzzVector>? s_vectors;

    public static IReadOnlyList<string> Names { get; } = [Frame, HandshakeServer, HandshakeClient, Records];

    public static IReadOnlyList<FuzzVector> Vectors => s_vectors ??= LoadVectors();

    /// <summary>Runs <paramref name="target"/> on one input; throws on a broken invariant.</summary>
    /// <returns>Where the session ended up, for tests and triage.</returns>
    public static FuzzOutcome Run(string target, ReadOnlySpan<byte> input) => target switch
    {
        Frame => RunFrame(input),
        HandshakeServer => RunScript(input, "server", established: false),
        HandshakeClient => RunScript(input, "client", established: false),
        Records => RunScript(input, side: null, established: true),
        _ => throw new ArgumentException($"Unknown fuzz target '{target}'; the targets are {string.Join(", ", Names)}.", nameof(target)),
    };

    /// <summary>
    /// frame: arbitrary bytes into Receive. Input: [start state] [flags: bit 0 write pending
    /// output after each packet, bits 1-3 how many segment lengths follow] [segment lengths]
    /// [bytes]. The start state picks a vector and a point of its recorded handshake (fresh,
    /// mid-handshake, awaiting trust, established, resetting, answering a reset, closing).
    /// </summary>
    private static FuzzOutcome RunFrame(ReadOnlySpan<byte> input)
    {
        var reader = new FuzzReader(input);
        byte start = reader.Byte();
        byte flags = reader.Byte();
        ReadOnlySpan<byte> cuts = reader.Bytes((flags >> 1) & 7);
        byte[] data = reader.Bytes(reader.Remaining).ToArray();

        FuzzVector vector = Vectors[start / FrameStartStates % Vectors.Count];
        int state = start % FrameStartStates;
        bool drain = (flags & 1) != 0;
        using var harness = new FuzzHarness(vector, state < 5 ? "client" : "server", refuseAtOnce: (flags & 0x10) == 0, drain);
        switch (state)
        {
            case 0: // client, nothing sent yet
            case 5: // server waiting for ClientHandshake
                break;
            case 1: // client waiting for ServerHandshake
            case 6: // server has sent ServerHandshake, waiting for ClientAuthentication
                harness.ReplayHandshake(state == 1 ? 1 : 2);
                break;
            case 2: // client has the ServerHandshake (about to authenticate, or awaiting trust)
                harness.ReplayHandshake(2);
                break;
            case 3: // client established
            case 7: // server established
                harness.Establish();
                break;
            case 4: // client closing after Disconnect(false)
                harness.Establish();
                harness.Disconnect(error: false);
                break;
            case 8: // server resetting: it broke off on an out-of-order packet
                harness.Deliver(OutOfOrderPacket(), []);
                break;
            default: // server answering a peer's Reset, mid-handshake
                harness.ReplayHandshake(1);
                harness.Deliver(ControlPacket(OssuaryProtocolLimits.Reset, error: true), []);
                break;
        }

        harness.Deliver(data, cuts);
        harness.Probe.DrainHandshake();
        harness.CheckPeerIdentity();
        return harness.Outcome();
    }

    /// <summary>
    /// handshake-server, handshake-client, records: a script of operations against one session.
    /// Input: [config: bits 0-1 vector, bit 2 keep libossuary's five-reset refusal, bit 3 write
    /// pending output after each packet, bit 4 (records) the side under test], then operations:
    /// 0 queue raw bytes (u16 length, bytes); 1 seal a packet as the genuine peer (u8 kind:
    /// bit 0 data else the peer's handshake packet; u8 msg_id; u8 nonce offset; u16 length;
    /// plaintext); 2 deliver the queue (u8 segment count, lengths); 3 write pending output;
    /// 4 advance the clock (u8 × 25 ms); 5 trust the server's key; 6 Disconnect (u8 error);
    /// 7 WriteData (u16: bit 15 multi-segment, the rest the length).
    /// </summary>
    private static FuzzOutcome RunScript(ReadOnlySpan<byte> input, string? side, bool established)
    {
        var reader = new FuzzReader(input);
        byte config = reader.Byte();
        FuzzVector vector = Vectors[(config & 3) % Vectors.Count];
        side ??= (config & 0x10) != 0 ? "client" : "server";
        using var harness = new FuzzHarness(vector, side, refuseAtOnce: (config & 4) == 0, drainAfterEachPacket: (config & 8) != 0);
        if (established)
        {
            harness.Establish();
        }

        for (int operations = 0; !reader.AtEnd && operations < MaxOperations; operations++)
        {
            switch (reader.Byte() % 8)
            {
                case 0:
                    harness.Queue(reader.Bytes(reader.UInt16()));
                    break;
                case 1:
                    byte kind = reader.Byte();
                    ushort messageId = reader.Byte();
                    int nonceOffset = reader.Byte();
                    int length = Math.Min((int)reader.UInt16(), OssuaryProtocolLimits.MaxPlaintext + 64);
                    harness.Queue(harness.Seal((kind & 1) != 0, messageId, nonceOffset, reader.Bytes(length)));
                    break;
                case 2:
                    harness.DeliverPending(reader.Bytes(reader.Byte() % 8));
                    break;
                case 3:
                    harness.Probe.DrainHandshake();
                    break;
                case 4:
                    harness.Probe.Clock.Advance(TimeSpan.FromMilliseconds(reader.Byte() * 25));
                    break;
                case 5:
                    harness.Trust();
                    break;
                case 6:
                    harness.Disconnect((reader.Byte() & 1) != 0);
                    break;
                default:
                    ushort send = reader.UInt16();
                    harness.Probe.WriteData(send & 0x7FFF, multiSegment: (send & 0x8000) != 0);
                    break;
            }

            harness.CheckPeerIdentity();
        }

        harness.DeliverPending([]);
        harness.Probe.DrainHandshake();
        harness.CheckPeerIdentity();
        return harness.Outcome();
    }

    /// <summary>An EncryptedData packet with msg_id 0 where a server expects ClientHandshake.</summary>
    internal static byte[] OutOfOrderPacket()
    {
        byte[] packet = new byte[8 + 20];
        BinaryPrimitives.WriteUInt16BigEndian(packet, 20);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), OssuaryProtocolLimits.EncryptedData);
        packet[8 + 2] = 16;
        return packet;
    }

    internal static byte[] ControlPacket(ushort type, bool error)
    {
        byte[] packet = new byte[8 + 4];
        BinaryPrimitives.WriteUInt16BigEndian(packet, 4);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), type);
        packet[8] = 4;
        packet[10] = error ? (byte)1 : (byte)0;
        return packet;
    }

    private static IReadOnlyList<FuzzVector> LoadVectors()
    {
        IReadOnlyList<FuzzVector> vectors = FuzzVector.LoadAll(FuzzVector.DefaultDirectory());
        return vectors.Count > 0 ? vectors : throw new InvalidDataException("No test vectors were found.");
    }
}
