using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Vectors;
using static Ossuary.Pipelines.OssuaryErrorReason;

namespace Ossuary.Pipelines.Tests.Protocol.Tampering;

internal enum TamperEffect
{
    /// <summary>The protocol does not read or check this byte: the session must go exactly as recorded.</summary>
    Ignored,

    /// <summary>The receiver rejects the packet that carries the damage (or, for a damaged len, waits for bytes that never come).</summary>
    DetectedOnArrival,

    /// <summary>The receiver accepts the packet; the damage surfaces at a later handshake step, on either side.</summary>
    DetectedLater,

    /// <summary>A Disconnect's error flag travels in the clear: flipping it turns "connection closed" into "connection failed".</summary>
    ErrorFlagFlipped,
}

/// <summary>What flipping one byte of a recorded packet must do, and why (PROTOCOL.md field by field).</summary>
internal sealed record TamperExpectation(TamperEffect Effect, string Why, params OssuaryErrorReason[] Reasons)
{
    /// <summary>A damaged len may make the receiver wait for a body that never arrives: that is truncation, also a detected error.</summary>
    public bool MayTruncate { get; init; }

    public static TamperExpectation For(VectorPacket packet, int offset, OssuarySessionState receiverOnArrival)
    {
        if (receiverOnArrival is OssuarySessionState.Closing or OssuarySessionState.Closed)
        {
            return Ignore("its receiver has already closed and reads nothing more (vector d's final Reset)");
        }

        return offset switch
        {
            0 or 1 => new(TamperEffect.DetectedOnArrival,
                "header len: smaller cuts the body (wrong size), larger waits for bytes that never come, over 16,404 closes the connection",
                UnexpectedPacketSize, OversizedPacket) { MayTruncate = true },
            2 or 3 when IsControl(packet) => Ignore("Reset/Disconnect msg_id: the original ignores ids on these"),
            2 or 3 => new(TamperEffect.DetectedOnArrival, "header msg_id", MessageIdMismatch),
            4 or 5 => new(TamperEffect.DetectedOnArrival,
                "header type: an unknown type or one not valid now; Disconnect xor 1 is Reset; a Disconnect turned unknown fails the msg_id check",
                UnexpectedPacket, ConnectionReset, MessageIdMismatch),
            6 or 7 => Ignore("header reserved bytes 6-7: ignored by the original"),
            _ => IsControl(packet) ? ForControlBody(packet, offset) : ForBody(packet, offset),
        };
    }

    private static TamperExpectation Ignore(string why) => new(TamperEffect.Ignored, why);

    private static bool IsControl(VectorPacket packet) => packet.Type is "Reset" or "Disconnect";

    private static TamperExpectation ForControlBody(VectorPacket packet, int offset) => offset switch
    {
        8 or 9 => Ignore("Reset/Disconnect body len: the original fills it with arbitrary bytes"),
        10 when packet.Type == "Disconnect" => new(TamperEffect.ErrorFlagFlipped, "Disconnect error flag, sent in the clear", ConnectionFailed),
        10 => Ignore("a Reset's error flag: every Reset is an error, the flag is not read"),
        _ => Ignore("Reset/Disconnect reserved byte 11"),
    };

    private static TamperExpectation ForBody(VectorPacket packet, int offset)
    {
        if (packet.Type == "EncryptedData")
        {
            return offset < 12
                ? new(TamperEffect.DetectedOnArrival, "data_len/tag_len of the encrypted blob", UnexpectedPacketSize)
                : new(TamperEffect.DetectedOnArrival, "ciphertext or Poly1305 tag", DecryptionFailed);
        }

        int bodyOffset = offset - 8;
        return bodyOffset switch
        {
            0 or 1 => new(TamperEffect.DetectedOnArrival, "handshake body len (LE)", UnexpectedPacketSize),
            2 => new(TamperEffect.DetectedOnArrival, "handshake version byte", WrongProtocolVersion),
            < 8 => Ignore("the 5 reserved bytes of a handshake body: never checked by the original"),
            _ => packet.Type switch
            {
                "ClientHandshake" => ForClientHandshake(bodyOffset),
                "ServerHandshake" => ForServerHandshake(bodyOffset),
                "ClientAuthentication" => bodyOffset < 12
                    ? new(TamperEffect.DetectedOnArrival, "data_len/tag_len of the ClientAuthentication blob", UnexpectedPacketSize)
                    : new(TamperEffect.DetectedOnArrival, "ClientAuthentication ciphertext or tag", DecryptionFailed),
                var other => throw new InvalidDataException($"no expectation for packet type {other}"),
            },
        };
    }

    private static TamperExpectation ForClientHandshake(int bodyOffset) => bodyOffset switch
    {
        < 40 => new(TamperEffect.DetectedLater,
            "client ephemeral key: nothing signs it, but the server derives another session key, so the client cannot open the ServerHandshake",
            DecryptionFailed),
        < 52 => new(TamperEffect.DetectedLater,
            "client session nonce: the server then opens the ClientAuthentication with the wrong nonce",
            DecryptionFailed),
        _ => new(TamperEffect.DetectedLater,
            "client challenge: the server signs the damaged challenge, which the client's check rejects",
            InvalidSignature),
    };

    private static TamperExpectation ForServerHandshake(int bodyOffset) => bodyOffset switch
    {
        < 40 => new(TamperEffect.DetectedOnArrival, "server ephemeral key: another session key, the blob does not open", DecryptionFailed, InvalidKey),
        < 52 => new(TamperEffect.DetectedOnArrival, "server session nonce: the blob does not open", DecryptionFailed),
        < 56 => new(TamperEffect.DetectedOnArrival, "data_len/tag_len of the ServerHandshake blob", UnexpectedPacketSize),
        _ => new(TamperEffect.DetectedOnArrival, "ServerHandshake ciphertext or tag", DecryptionFailed),
    };
}
