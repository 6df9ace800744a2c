namespace Ossuary.Pipelines.Tests.Interop.Original.Differential;

/// <summary>
/// The differences from the original that the comparison accepts, each one a decision documented
/// in the README ("Decisions") or SECURITY.md, or a bug of the original. Each is accepted only
/// where our run shows the documented behaviour (a <see cref="Marker"/> our loop set at the
/// call concerned) and only after everything before it matched; any other difference fails.
/// </summary>
internal static class KnownDifferences
{
    /// <summary>
    /// README: "A received Disconnect closes the session for good." Once established, the
    /// original answers a Disconnect with a Reset and waits in ResetWait for a re-handshake (and
    /// takes one, if the other side offers it: a forged Disconnect then costs a re-handshake,
    /// not the connection); we send the same Reset and stay closed. Checked: every packet up to
    /// and including that Reset is identical, and our side ends closed.
    /// </summary>
    public const string EstablishedDisconnectIsFinal = "EstablishedDisconnectIsFinal";

    /// <summary>
    /// README: "Malformed blob lengths are a clean protocol error, where the original can crash."
    /// The original's bug: it panics (slice index out of range) on some corrupted lengths. Checked:
    /// everything it printed before the panic matches, and our answer to the same packet is a
    /// clean error result, not an exception.
    /// </summary>
    public const string OriginalPanics = "OriginalPanics";

    /// <summary>
    /// README: "Malformed blob lengths are a clean protocol error": a data packet whose blob says
    /// <c>tag_len</c> is not 16 is refused (PROTOCOL.md: a receiver must check it). The original
    /// checks the field in handshake blobs only and decrypts such a data packet (the field is
    /// outside the authenticated bytes; an original peer always writes 16). Checked: the first
    /// difference is that receive call, ours an error, the original's the plaintext.
    /// </summary>
    public const string DataTagLengthChecked = "DataTagLengthChecked";

    /// <summary>
    /// README: "Unknown clients are refused at once" (<c>RefuseUnauthorizedClientsAtOnce</c>, on by
    /// default). The main comparison runs our server with the option off (the original's five
    /// resets); for refused clients the default is run as well. Checked: our server writes
    /// Disconnect (error) instead of its first Reset, ends with InvalidKey, and both clients fail.
    /// </summary>
    public const string RefuseUnauthorizedClientsAtOnce = "RefuseUnauthorizedClientsAtOnce";

    /// <summary>
    /// README: "The fifth reset ends the connection whichever side starts it." When a Reset the
    /// peer did not answer (one injected on the wire, after four resets) is a side's fifth, the
    /// original answers it with a Reset and fails only at its next one; we write Disconnect
    /// (error) instead of that answer. Checked: everything up to that side's answer matches, its
    /// answer is our Disconnect (error) where the original wrote a Reset, and the side ends failed.
    /// </summary>
    public const string PeerStartedFifthResetFails = "PeerStartedFifthResetFails";

    /// <summary>
    /// README: "Handshake packets are exactly their size." A ClientHandshake, ServerHandshake or
    /// ClientAuthentication whose body runs past its fixed size (its own <c>len</c> field still saying
    /// that size) is refused with a reset (<c>UnexpectedPacketSize</c>); the original reads its fields
    /// from the front of the body and ignores the rest. Checked: everything before that receive call
    /// matches, and the call is where the runs part, the original's Ok, ours an error.
    /// </summary>
    public const string HandshakePaddingRefused = "HandshakePaddingRefused";

    /// <summary>
    /// README: "A Disconnect cut short ends the connection as a failure." During the handshake the
    /// original cannot parse a Disconnect whose body is shorter than its 4 bytes and drops it (the
    /// receive call fails, its state stays); ours ends with <c>ConnectionFailed</c> and answers with
    /// Disconnect (error). (Once established, the original resets on it, and
    /// <see cref="EstablishedDisconnectIsFinal"/> applies.) Checked: everything up to and including that
    /// receive call matches (an error on both sides), the side's next packet is our Disconnect (error)
    /// where the runs part, and the side ends with <c>ConnectionFailed</c>.
    /// </summary>
    public const string ShortDisconnectFails = "ShortDisconnectFails";

    /// <summary>
    /// Not reachable by the generated scenarios (they would need a peer that encrypts a forged
    /// identity or a low-order X25519 key, which one corrupted byte cannot make under the AEAD tag):
    /// an unauthenticated server verifies a presented client signature, an all-zero X25519
    /// result is refused. Listed so the table is complete; the tests in Protocol/ cover them.
    /// </summary>
    public static readonly string[] NotReachable = ["UnauthenticatedServerVerifiesSignature", "AllZeroSharedSecretRefused"];
}
