namespace Ossuary.Pipelines;

/// <summary>
/// Why an Ossuary session failed, reset or closed. The names follow the error kinds of the
/// original libossuary so that logs read the same on both sides of a mixed deployment.
/// </summary>
public enum OssuaryErrorReason
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>A packet header announced a body larger than the protocol's 16,412-byte packet limit.</summary>
    OversizedPacket,

    /// <summary>A packet did not carry the next expected <c>msg_id</c> (dropped, replayed or reordered).</summary>
    MessageIdMismatch,

    /// <summary>A handshake packet carried a protocol version other than 1.</summary>
    WrongProtocolVersion,

    /// <summary>A packet's length fields did not match its type's fixed layout.</summary>
    UnexpectedPacketSize,

    /// <summary>A packet of a type that is unknown, or not valid in the session's current state.</summary>
    UnexpectedPacket,

    /// <summary>An encrypted blob failed its Poly1305 tag check: tampered, forged or replayed.</summary>
    DecryptionFailed,

    /// <summary>A handshake signature was missing, all zeros or did not verify.</summary>
    InvalidSignature,

    /// <summary>
    /// A key was rejected: a low-order X25519 point, a handshake nonce equal to our own (our
    /// handshake reflected back), or a client key an authenticated server does not allow (what the
    /// server reports and logs). The refused client does not see this reason: the wire carries none,
    /// so its first read reports <see cref="ConnectionFailed"/>, with the likely cause in the message.
    /// </summary>
    InvalidKey,

    /// <summary>The server presented a key the client does not trust.</summary>
    UntrustedServer,

    /// <summary>The peer reset the session.</summary>
    ConnectionReset,

    /// <summary>
    /// The connection ended because of a failure: the peer's Disconnect with its error flag set (how
    /// a server refuses a client it does not admit), our own <see cref="Protocol.OssuarySession.Disconnect"/>
    /// with an error, or (on every call after the one that reported the cause) a fifth reset.
    /// </summary>
    ConnectionFailed,

    /// <summary>The connection was closed cleanly.</summary>
    ConnectionClosed,

    /// <summary>
    /// A handshake wait ran out: the peer did not send its next handshake packet, or did not answer
    /// our Reset, in time; or (a client) the application did not decide whether to trust the server in time.
    /// </summary>
    HandshakeTimeout,

    /// <summary>A key had the wrong length (keys are 32 bytes).</summary>
    InvalidKeySize,

    /// <summary>The transport ended in the middle of a packet, or without a Disconnect.</summary>
    Truncated,
}
