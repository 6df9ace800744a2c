using System.Buffers.Binary;
using System.Security.Cryptography;
using ChaCha20Poly1305 = System.Security.Cryptography.ChaCha20Poly1305;
// Not "X25519": NATS.NKeys (the telemetry sample's NATS client) defines a global X25519 type.
using GeraltX25519 = Geralt.X25519;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// Builds handshake packets by hand (PROTOCOL.md, "Handshake") with Geralt's X25519 and the BCL's
/// ChaCha20-Poly1305, so a test can put any value in fields a real session would never get wrong.
/// An edit callback sees the plaintext secrets after signing and before sealing.
/// </summary>
internal sealed class ForgedPeer
{
    private const int KeySize = 32;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private readonly byte[] _ephemeralSecret = RandomNumberGenerator.GetBytes(KeySize);

    /// <param name="wireEphemeralKey">Sent instead of the real ephemeral public key (the session key is still derived from the real secret).</param>
    public ForgedPeer(byte[]? wireEphemeralKey = null)
    {
        GeraltX25519.ComputePublicKey(EphemeralPublic, _ephemeralSecret);
        WireEphemeralKey = wireEphemeralKey ?? EphemeralPublic;
    }

    public byte[] EphemeralPublic { get; } = new byte[KeySize];

    public byte[] WireEphemeralKey { get; }

    public byte[] Nonce { get; } = RandomNumberGenerator.GetBytes(NonceSize);

    public byte[] Challenge { get; } = RandomNumberGenerator.GetBytes(KeySize);

    public byte[] ClientHandshake() => Packet(0, Wire.ClientHandshake, [.. WireEphemeralKey, .. Nonce, .. Challenge]);

    /// <summary>A ServerHandshake answering <paramref name="clientHandshake"/>, signed by <paramref name="identity"/>; secrets = key · challenge · signature.</summary>
    public byte[] ServerHandshake(byte[] clientHandshake, OssuaryIdentity identity, Action<byte[]>? edit = null)
    {
        ReadOnlySpan<byte> body = clientHandshake.AsSpan(Wire.HeaderSize);
        ReadOnlySpan<byte> clientEphemeral = body.Slice(8, KeySize);
        ReadOnlySpan<byte> clientChallenge = body.Slice(8 + KeySize + NonceSize, KeySize);
        byte[] secrets = new byte[128];
        identity.PublicKey.CopyTo(secrets);
        Challenge.CopyTo(secrets, KeySize);
        identity.Sign(secrets.AsSpan(2 * KeySize), [.. EphemeralPublic, .. Nonce, .. clientChallenge]);
        edit?.Invoke(secrets);
        return Packet(0, Wire.ServerHandshake, [.. WireEphemeralKey, .. Nonce, .. Seal(clientEphemeral, secrets)]);
    }

    /// <summary>A ClientAuthentication answering <paramref name="serverHandshake"/>; secrets = key · signature (anonymous without an identity).</summary>
    public byte[] ClientAuthentication(byte[] serverHandshake, OssuaryIdentity? identity, Action<byte[]>? edit = null)
    {
        ReadOnlySpan<byte> body = serverHandshake.AsSpan(Wire.HeaderSize);
        ReadOnlySpan<byte> serverEphemeral = body.Slice(8, KeySize);
        ReadOnlySpan<byte> serverNonce = body.Slice(8 + KeySize, NonceSize);
        ReadOnlySpan<byte> blob = body[(8 + KeySize + NonceSize)..];
        byte[] serverSecrets = new byte[128];
        using (var aead = new ChaCha20Poly1305(SessionKey(serverEphemeral)))
        {
            aead.Decrypt(serverNonce, blob.Slice(4, 128), blob.Slice(4 + 128, TagSize), serverSecrets);
        }

        byte[] secrets = new byte[96];
        if (identity is null)
        {
            OssuaryPublicKey.Anonymous.CopyTo(secrets);
        }
        else
        {
            identity.PublicKey.CopyTo(secrets);
            identity.Sign(secrets.AsSpan(KeySize), [.. EphemeralPublic, .. Nonce, .. serverSecrets.AsSpan(KeySize, KeySize)]);
        }

        edit?.Invoke(secrets);
        return Packet(1, Wire.ClientAuthentication, Seal(serverEphemeral, secrets));
    }

    private byte[] SessionKey(ReadOnlySpan<byte> peerEphemeral)
    {
        byte[] key = new byte[KeySize];
        GeraltX25519.ComputeSharedSecret(key, _ephemeralSecret, peerEphemeral);
        return key;
    }

    /// <summary>data_len · tag_len (both LE) · ciphertext · tag, sealed with this side's nonce.</summary>
    private byte[] Seal(ReadOnlySpan<byte> peerEphemeral, byte[] secrets)
    {
        byte[] blob = new byte[4 + secrets.Length + TagSize];
        BinaryPrimitives.WriteUInt16LittleEndian(blob, (ushort)secrets.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(blob.AsSpan(2), TagSize);
        using var aead = new ChaCha20Poly1305(SessionKey(peerEphemeral));
        aead.Encrypt(Nonce, secrets, blob.AsSpan(4, secrets.Length), blob.AsSpan(4 + secrets.Length));
        return blob;
    }

    /// <summary>Header · body len (LE) · version 1 · 5 reserved bytes · fields.</summary>
    private static byte[] Packet(ushort messageId, ushort type, byte[] fields)
    {
        ushort bodyLength = (ushort)(8 + fields.Length);
        byte[] common = new byte[8];
        BinaryPrimitives.WriteUInt16LittleEndian(common, bodyLength);
        common[2] = 1;
        return [.. Wire.Header(bodyLength, messageId, type), .. common, .. fields];
    }
}
