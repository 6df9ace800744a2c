using System.Buffers;
using System.Buffers.Binary;
using Geralt;
using Ossuary.Pipelines.Crypto;
using static Ossuary.Pipelines.Protocol.HandshakeBody;

namespace Ossuary.Pipelines.Protocol;

public sealed partial class OssuarySession
{
    /// <summary>Body of Reset and Disconnect: len · error flag · reserved.</summary>
    internal const int ControlBodySize = 4;

    /// <summary>
    /// Writes the next handshake or control packet (ClientHandshake, ServerHandshake,
    /// ClientAuthentication, Reset or Disconnect), if the session has one to send. Call it until
    /// it returns 0 after every <see cref="Receive"/>, and after <see cref="AddAuthorizedKey"/>
    /// or <see cref="Disconnect"/>.
    /// </summary>
    /// <returns>The bytes written: one whole packet, or 0 if there is nothing to send.</returns>
    /// <exception cref="Exception">
    /// Whatever <paramref name="output"/> throws from <c>GetSpan</c> or <c>Advance</c>: the packet is still owed,
    /// and the next call writes it again, the same bytes.
    /// </exception>
    public int WriteHandshake(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        lock (_gate)
        {
            return WriteNextHandshake(output);
        }
    }

    private int WriteNextHandshake(IBufferWriter<byte> output)
    {
        CheckTimeout();

        // Each control packet is written before the step moves on: an output that throws (the
        // caller's writer) leaves it owed, and the next call writes it. Moved on first, a writer that
        // threw lost the Disconnect, the Reset or its answer for good, and the session waited for
        // the answer to a Reset it never sent.
        if (_resetAnswerPending && _step != Step.SendFarewell)
        {
            int answer = WriteControl(output, PacketType.Reset, error: true);
            _resetAnswerPending = false;
            return answer;
        }

        switch (_step)
        {
            case Step.ClientSendHandshake:
                return WritePacket(output, PacketType.ClientHandshake, ClientHandshakeSize, Step.ClientWaitServerHandshake);
            case Step.ServerSendHandshake:
                return WritePacket(output, PacketType.ServerHandshake, ServerHandshakeSize, Step.ServerWaitAuthentication);
            case Step.ClientSendAuthentication:
                return WritePacket(output, PacketType.ClientAuthentication, ClientAuthenticationSize, Step.Established);
            case Step.SendResetThenWait:
                int reset = WriteControl(output, PacketType.Reset, error: true);
                EnterWait(Step.ResetWait);
                return reset;
            case Step.SendFarewell:
                int farewell = _farewell == Farewell.Reset
                    ? WriteControl(output, PacketType.Reset, error: true)
                    : WriteControl(output, PacketType.Disconnect, _farewell == Farewell.ErrorDisconnect);
                _step = Step.Closed;
                return farewell;
            default:
                return 0;
        }
    }

    private int WritePacket(IBufferWriter<byte> output, PacketType type, int bodySize, Step next)
    {
        int packetSize = PacketHeader.Size + bodySize;
        Span<byte> packet = output.GetSpan(packetSize)[..packetSize];
        new PacketHeader((ushort)bodySize, _localMessageId, type).Write(packet);
        Span<byte> body = packet[PacketHeader.Size..];
        WriteCommon(body);
        switch (type)
        {
            case PacketType.ClientHandshake:
                Ephemeral.PublicKey.CopyTo(body[EphemeralKeyOffset..]);
                ((ReadOnlySpan<byte>)_localNonce).CopyTo(body[NonceOffset..]);
                ((ReadOnlySpan<byte>)_localChallenge).CopyTo(body[ChallengeOffset..]);
                break;
            case PacketType.ServerHandshake:
                Ephemeral.PublicKey.CopyTo(body[EphemeralKeyOffset..]);
                ((ReadOnlySpan<byte>)_localNonce).CopyTo(body[NonceOffset..]);
                SealServerSecrets(body[ServerBlobOffset..]);
                break;
            default:
                SealClientSecrets(body[ClientBlobOffset..]);
                break;
        }

        output.Advance(packetSize);

        // Spent only once the writer took the packet: one whose Advance throws stays owed, and the next
        // call writes the same bytes again. Spent before, the retry carried the next message id (and,
        // sealed, the next nonce, which the peer does not expect for its blob): the peer reset on it.
        // Sealing the same blob again under the same nonce gives the same ciphertext: its plaintext
        // (identity key, challenge, a deterministic Ed25519 signature over the same bytes) is unchanged.
        _localMessageId++;
        if (type != PacketType.ClientHandshake)
        {
            _localNonce.Increment();
        }

        if (next == Step.Established)
        {
            EnterEstablished();
        }
        else
        {
            EnterWait(next);
        }

        return packetSize;
    }

    private int WriteControl(IBufferWriter<byte> output, PacketType type, bool error)
    {
        int packetSize = WriteControlPacket(output, type, error);
        _localMessageId = 0;
        return packetSize;
    }

    /// <summary>
    /// A Disconnect with the error flag set, for a server that fails before it has a session (its
    /// <c>IdentitySelector</c> gave it no key): what a session's own Disconnect (error) writes.
    /// </summary>
    internal static int WriteErrorDisconnect(IBufferWriter<byte> output) => WriteControlPacket(output, PacketType.Disconnect, error: true);

    private static int WriteControlPacket(IBufferWriter<byte> output, PacketType type, bool error)
    {
        const int packetSize = PacketHeader.Size + ControlBodySize;
        Span<byte> packet = output.GetSpan(packetSize)[..packetSize];

        // Reset and Disconnect always carry msg_id 0: the counters restart with them.
        new PacketHeader(ControlBodySize, 0, type).Write(packet);
        BinaryPrimitives.WriteUInt16LittleEndian(packet[PacketHeader.Size..], ControlBodySize);
        packet[PacketHeader.Size + 2] = error ? (byte)1 : (byte)0;
        packet[PacketHeader.Size + 3] = 0;
        output.Advance(packetSize);
        return packetSize;
    }

    private void SealServerSecrets(Span<byte> blob)
    {
        Span<byte> secrets = stackalloc byte[ServerSecretsSize];
        _identity!.PublicKey.CopyTo(secrets);
        ((ReadOnlySpan<byte>)_localChallenge).CopyTo(secrets[KeySize..]);
        SignOwnKeys(secrets[(KeySize + ChallengeSize)..]);
        SealBlob(secrets, blob);
    }

    private void SealClientSecrets(Span<byte> blob)
    {
        Span<byte> secrets = stackalloc byte[ClientSecretsSize];
        LocalPublicKey.CopyTo(secrets);
        Span<byte> signature = secrets[KeySize..];
        if (_identity is null)
        {
            signature.Clear(); // an anonymous client: identity point and an all-zero signature
        }
        else
        {
            SignOwnKeys(signature);
        }

        SealBlob(secrets, blob);
    }

    private void SignOwnKeys(Span<byte> signature)
    {
        Span<byte> message = stackalloc byte[SignedMessageSize];
        ComposeSignedMessage(message, Ephemeral.PublicKey, _localNonce, RemoteChallenge);
        _identity!.Sign(signature, message);
    }

    /// <summary>Seals a handshake blob under this side's nonce, which <see cref="WritePacket"/> spends once the packet is written.</summary>
    private void SealBlob(ReadOnlySpan<byte> secrets, Span<byte> blob)
    {
        EncryptedBlob.WriteHeader(blob, secrets.Length);
        Span<byte> ciphertext = blob.Slice(EncryptedBlob.HeaderSize, secrets.Length);
        _cipher!.Seal(_localNonce, secrets, ciphertext, blob.Slice(EncryptedBlob.HeaderSize + secrets.Length, EncryptedBlob.TagSize));
    }

    private OssuaryReceiveResult ReadClientHandshake(ReadOnlySpan<byte> body)
    {
        OssuaryErrorReason error = Validate(body, ClientHandshakeSize);
        if (error != OssuaryErrorReason.None)
        {
            return BeginReset(error, initiator: true);
        }

        if (!AcceptPeerKeys(body))
        {
            return BeginReset(OssuaryErrorReason.InvalidKey, initiator: true);
        }

        body.Slice(ChallengeOffset, ChallengeSize).CopyTo(RemoteChallenge);
        Ephemeral.Spend();
        _step = Step.ServerSendHandshake;
        return OssuaryReceiveResult.Handshake;
    }

    private OssuaryReceiveResult ReadServerHandshake(ReadOnlySpan<byte> body)
    {
        OssuaryErrorReason error = Validate(body, ServerHandshakeSize);
        if (error != OssuaryErrorReason.None)
        {
            return BeginReset(error, initiator: true);
        }

        if (!AcceptPeerKeys(body))
        {
            return BeginReset(OssuaryErrorReason.InvalidKey, initiator: true);
        }

        Span<byte> secrets = stackalloc byte[ServerSecretsSize];
        error = OpenBlob(body[ServerBlobOffset..], secrets);
        if (error != OssuaryErrorReason.None)
        {
            return BeginReset(error, initiator: true);
        }

        ReadOnlySpan<byte> identityKey = secrets[..KeySize];
        ReadOnlySpan<byte> challenge = secrets.Slice(KeySize, ChallengeSize);
        ReadOnlySpan<byte> signature = secrets[(KeySize + ChallengeSize)..];
        if (ConstantTime.IsAllZeros(identityKey) || ConstantTime.IsAllZeros(challenge) || ConstantTime.IsAllZeros(signature)
            || !VerifyPeer(identityKey, signature, body.Slice(NonceOffset, SessionNonce.Size)))
        {
            return BeginReset(OssuaryErrorReason.InvalidSignature, initiator: true);
        }

        challenge.CopyTo(RemoteChallenge);
        _remotePublicKey = new OssuaryPublicKey(identityKey);

        // The packet is read: the last allocation is behind us, so the agreement it made is final.
        Ephemeral.Spend();
        if (IsAuthorized(identityKey))
        {
            _step = Step.ClientSendAuthentication;
            return OssuaryReceiveResult.Handshake;
        }

        // Not LastError: a pause for the application's decision is neither a reset nor an end, and
        // trusted on first use the session would have said UntrustedServer for the rest of its life.
        EnterWait(Step.ClientAwaitingTrust);
        return new OssuaryReceiveResult(OssuaryReceiveStatus.UntrustedServer, 0, OssuaryErrorReason.UntrustedServer);
    }

    private OssuaryReceiveResult ReadClientAuthentication(ReadOnlySpan<byte> body)
    {
        OssuaryErrorReason error = Validate(body, ClientAuthenticationSize);
        if (error != OssuaryErrorReason.None)
        {
            return BeginReset(error, initiator: true);
        }

        Span<byte> secrets = stackalloc byte[ClientSecretsSize];
        ReadOnlySpan<byte> clientNonce = _remoteNonce;
        Span<byte> signedNonce = stackalloc byte[SessionNonce.Size];
        clientNonce.CopyTo(signedNonce);
        error = OpenBlob(body[ClientBlobOffset..], secrets);
        if (error != OssuaryErrorReason.None)
        {
            return BeginReset(error, initiator: true);
        }

        ReadOnlySpan<byte> identityKey = secrets[..KeySize];
        ReadOnlySpan<byte> signature = secrets[KeySize..];
        bool anonymous = OssuaryPublicKey.Anonymous.Equals(identityKey) && ConstantTime.IsAllZeros(signature);
        bool authenticated = Role == OssuaryRole.AuthenticatedServer;
        if (authenticated && anonymous && _refuseAtOnce)
        {
            return RefuseAtOnce();
        }

        // The original checks signatures only on authenticated servers; we also check them on an
        // unauthenticated server whenever a client presents a key, so RemotePublicKey is proven.
        // Before the allow-list, as the original does: a key that did not sign gets the same answer
        // whether the list holds it or not, so a forger cannot learn which keys are admitted.
        if ((authenticated || !anonymous) && (ConstantTime.IsAllZeros(identityKey) || ConstantTime.IsAllZeros(signature)
            || !VerifyPeer(identityKey, signature, signedNonce)))
        {
            return BeginReset(OssuaryErrorReason.InvalidSignature, initiator: true);
        }

        if (authenticated && !IsAuthorized(identityKey))
        {
            return _refuseAtOnce ? RefuseAtOnce() : BeginReset(OssuaryErrorReason.InvalidKey, initiator: true);
        }

        _remotePublicKey = anonymous ? OssuaryPublicKey.Anonymous : new OssuaryPublicKey(identityKey);
        EnterEstablished();
        return OssuaryReceiveResult.Handshake;
    }

    /// <summary>PROTOCOL.md, "Refused client": a Disconnect (error) now instead of five resets.</summary>
    private OssuaryReceiveResult RefuseAtOnce()
    {
        Close(OssuaryErrorReason.InvalidKey, Farewell.ErrorDisconnect);
        return OssuaryReceiveResult.Closed(OssuaryErrorReason.InvalidKey);
    }

    /// <summary>Takes the peer's ephemeral key and nonce from a ClientHandshake or ServerHandshake and derives the session key.</summary>
    /// <remarks>
    /// The ephemeral secret is not spent here but by the caller once it has read the whole packet: the
    /// cipher made here, and the peer's identity key made after it, may find no memory (the C library's
    /// full heap), and the same packet handed in again must agree the same key. Spent here, the retry
    /// met a zeroed secret and threw, every time, until the handshake timed out.
    /// </remarks>
    private bool AcceptPeerKeys(ReadOnlySpan<byte> body)
    {
        // Both directions share one key, so two equal nonces would mean one keystream for two
        // plaintexts. Random nonces never meet; a peer whose nonce is ours is replaying our own
        // handshake back at us (or choosing it). Refused before any key agreement.
        ReadOnlySpan<byte> peerNonce = body.Slice(NonceOffset, SessionNonce.Size);
        if (peerNonce.SequenceEqual(_localNonce))
        {
            return false;
        }

        ReadOnlySpan<byte> peerKey = body.Slice(EphemeralKeyOffset, KeySize);
        peerKey.CopyTo(RemoteEphemeralKey);
        _remoteNonce = SessionNonce.From(peerNonce);
        Span<byte> sessionKey = stackalloc byte[RecordCipher.KeySize];
        try
        {
            if (!Ephemeral.TryAgree(peerKey, sessionKey))
            {
                // The reset that follows draws a new secret over this one.
                return false;
            }

            var cipher = new RecordCipher(sessionKey);
            ForgetSessionKey();
            _cipher = cipher;
            return true;
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(sessionKey);
        }
    }

    /// <summary>Opens a handshake blob with the peer's nonce, which then advances.</summary>
    private OssuaryErrorReason OpenBlob(ReadOnlySpan<byte> blob, Span<byte> secrets)
    {
        if (!EncryptedBlob.TryReadHeader(blob, blob.Length, out int dataLength) || dataLength != secrets.Length)
        {
            return OssuaryErrorReason.UnexpectedPacketSize;
        }

        ReadOnlySpan<byte> ciphertext = blob.Slice(EncryptedBlob.HeaderSize, dataLength);
        ReadOnlySpan<byte> tag = blob.Slice(EncryptedBlob.HeaderSize + dataLength, EncryptedBlob.TagSize);
        if (!_cipher!.TryOpen(_remoteNonce, ciphertext, tag, secrets))
        {
            return OssuaryErrorReason.DecryptionFailed;
        }

        _remoteNonce.Increment();
        return OssuaryErrorReason.None;
    }

    /// <summary>Checks the peer's signature over its ephemeral key · its nonce · our challenge.</summary>
    private bool VerifyPeer(ReadOnlySpan<byte> identityKey, ReadOnlySpan<byte> signature, ReadOnlySpan<byte> peerNonce)
    {
        Span<byte> message = stackalloc byte[SignedMessageSize];
        ComposeSignedMessage(message, RemoteEphemeralKey, peerNonce, _localChallenge);
        return Ed25519.Verify(signature, message, identityKey);
    }
}
