namespace Ossuary.Pipelines;

/// <summary>
/// The one exception type of this library: an Ossuary session failed, and <see cref="Reason"/> says why.
/// Messages never contain key material.
/// </summary>
public sealed class OssuaryException : IOException
{
    /// <summary>Creates an exception with the default message for <paramref name="reason"/>.</summary>
    public OssuaryException(OssuaryErrorReason reason)
        : this(reason, DescribeReason(reason))
    {
    }

    /// <summary>Creates an exception with a message of the caller's.</summary>
    public OssuaryException(OssuaryErrorReason reason, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Reason = reason;
    }

    /// <summary>Why the session failed.</summary>
    public OssuaryErrorReason Reason { get; }

    /// <summary>A one-line description of <paramref name="reason"/>.</summary>
    public static string DescribeReason(OssuaryErrorReason reason) => reason switch
    {
        OssuaryErrorReason.None => "No error.",
        OssuaryErrorReason.OversizedPacket => "Oversized packet: the peer announced a packet larger than 16,412 bytes.",
        OssuaryErrorReason.MessageIdMismatch => "Message id does not match: a packet was dropped, replayed or reordered.",
        OssuaryErrorReason.WrongProtocolVersion => "Wrong protocol version: the peer does not speak Ossuary v1.",
        OssuaryErrorReason.UnexpectedPacketSize => "Unexpected packet size: a packet's length fields do not match its layout.",
        OssuaryErrorReason.UnexpectedPacket => "Unexpected packet: unknown type, or not valid in this state.",
        OssuaryErrorReason.DecryptionFailed => "Decryption failed: the packet was tampered with or forged.",
        OssuaryErrorReason.InvalidSignature => "Invalid signature in the handshake.",
        OssuaryErrorReason.InvalidKey => "Invalid key: the peer's key was rejected.",
        OssuaryErrorReason.UntrustedServer => "Untrusted server: the server's key is not among the trusted keys.",
        OssuaryErrorReason.ConnectionReset => "Connection reset by the peer.",
        OssuaryErrorReason.ConnectionFailed => "Connection failed.",
        OssuaryErrorReason.ConnectionClosed => "Connection closed.",
        OssuaryErrorReason.HandshakeTimeout => "Handshake timed out: the peer did not answer in time, or the trust decision took too long.",
        OssuaryErrorReason.InvalidKeySize => "Invalid key size: keys are 32 bytes (64 hex characters).",
        OssuaryErrorReason.Truncated => "Connection truncated: the transport ended without a Disconnect.",
        _ => $"Ossuary error {(int)reason}.",
    };
}
