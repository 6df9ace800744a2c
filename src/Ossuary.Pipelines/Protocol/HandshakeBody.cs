using System.Buffers.Binary;

namespace Ossuary.Pipelines.Protocol;

/// <summary>
/// Layout of the three handshake bodies. Each starts with the same 8 bytes: its own length
/// (u16 <b>little-endian</b>), the protocol version, and 5 reserved bytes that the original
/// never checks (so neither do we: rejecting them would refuse valid original peers).
/// </summary>
internal static class HandshakeBody
{
    public const byte ProtocolVersion = 1;
    public const int CommonSize = 8;

    public const int KeySize = 32;
    public const int ChallengeSize = 32;
    public const int SignatureSize = 64;

    /// <summary>ClientHandshake: ephemeral public key · session nonce · challenge.</summary>
    public const int ClientHandshakeSize = CommonSize + KeySize + SessionNonce.Size + ChallengeSize;

    /// <summary>Plaintext of the ServerHandshake blob: identity key · server challenge · signature.</summary>
    public const int ServerSecretsSize = KeySize + ChallengeSize + SignatureSize;

    /// <summary>ServerHandshake: ephemeral public key · session nonce · encrypted blob.</summary>
    public const int ServerHandshakeSize = CommonSize + KeySize + SessionNonce.Size + EncryptedBlob.Overhead + ServerSecretsSize;

    /// <summary>Plaintext of the ClientAuthentication blob: identity key · signature.</summary>
    public const int ClientSecretsSize = KeySize + SignatureSize;

    /// <summary>ClientAuthentication: encrypted blob.</summary>
    public const int ClientAuthenticationSize = CommonSize + EncryptedBlob.Overhead + ClientSecretsSize;

    /// <summary>The largest handshake packet, header included: a stack buffer of this size holds any of them.</summary>
    public const int MaxPacketSize = PacketHeader.Size + ServerHandshakeSize;

    /// <summary>Offset of the ephemeral key in ClientHandshake and ServerHandshake; the nonce follows it.</summary>
    public const int EphemeralKeyOffset = CommonSize;
    public const int NonceOffset = EphemeralKeyOffset + KeySize;
    public const int ChallengeOffset = NonceOffset + SessionNonce.Size;
    public const int ServerBlobOffset = NonceOffset + SessionNonce.Size;
    public const int ClientBlobOffset = CommonSize;

    /// <summary>Bytes signed by each side: its own ephemeral key · its own nonce · the peer's challenge.</summary>
    public const int SignedMessageSize = KeySize + SessionNonce.Size + ChallengeSize;

    public static void WriteCommon(Span<byte> body)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(body, (ushort)body.Length);
        body[2] = ProtocolVersion;
        body[3..CommonSize].Clear();
    }

    /// <summary>Checks version, then sizes, in the original's order, so its peers see the same error.</summary>
    public static OssuaryErrorReason Validate(ReadOnlySpan<byte> body, int expectedSize)
    {
        if (body.Length >= CommonSize && body[2] != ProtocolVersion)
        {
            return OssuaryErrorReason.WrongProtocolVersion;
        }

        if (body.Length != expectedSize || BinaryPrimitives.ReadUInt16LittleEndian(body) != expectedSize)
        {
            return OssuaryErrorReason.UnexpectedPacketSize;
        }

        return OssuaryErrorReason.None;
    }

    public static void ComposeSignedMessage(Span<byte> message, ReadOnlySpan<byte> ephemeralKey, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> challenge)
    {
        ephemeralKey.CopyTo(message);
        nonce.CopyTo(message[KeySize..]);
        challenge.CopyTo(message[(KeySize + SessionNonce.Size)..]);
    }
}
