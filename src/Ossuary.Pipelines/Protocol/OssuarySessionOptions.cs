namespace Ossuary.Pipelines.Protocol;

/// <summary>Settings of one <see cref="OssuarySession"/>; read once, when the session is created.</summary>
public sealed class OssuarySessionOptions
{
    /// <summary>The original's wait for the peer's next handshake packet.</summary>
    public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(3);

    /// <summary>How long a session waits for the peer to answer its Reset, by default: the handshake step's 3 s.</summary>
    public static readonly TimeSpan DefaultResetTimeout = TimeSpan.FromSeconds(3);

    /// <summary>How long a client waits for the application's trust decision, by default: a minute, time for a person to compare a key.</summary>
    public static readonly TimeSpan DefaultTrustDecisionTimeout = TimeSpan.FromMinutes(1);

    /// <summary>The side this session plays.</summary>
    public OssuaryRole Role { get; set; }

    /// <summary>
    /// This host's identity. Optional for a client (without one it is anonymous); a server
    /// without one makes a random identity for the session's lifetime, as the original does.
    /// The session signs with it but does not own it: dispose it after the sessions that use it.
    /// </summary>
    public OssuaryIdentity? Identity { get; set; }

    /// <summary>
    /// For a client, the server keys it trusts; for an authenticated server, the client keys it
    /// admits. An unauthenticated server ignores the list.
    /// </summary>
    public IList<OssuaryPublicKey> AuthorizedKeys { get; } = new List<OssuaryPublicKey>();

    /// <summary>
    /// How long to wait for the peer's next handshake packet before resetting. Default 3 s, the
    /// original's value (it acts at its first check after 4 whole seconds).
    /// </summary>
    public TimeSpan HandshakeTimeout { get; set; } = DefaultHandshakeTimeout;

    /// <summary>
    /// How long to wait for the peer's answering Reset after this side reset the session
    /// (<see cref="OssuarySessionState.Resetting"/>) before giving up: the session then closes with
    /// Disconnect (error) and <see cref="OssuaryErrorReason.HandshakeTimeout"/>. Default 3 s. The
    /// original waits forever here; any live peer answers at once, so only a silent one is affected.
    /// </summary>
    public TimeSpan ResetTimeout { get; set; } = DefaultResetTimeout;

    /// <summary>
    /// Clients only: how long the handshake stays paused in <see cref="OssuarySessionState.AwaitingTrust"/>
    /// for the application to call <see cref="OssuarySession.AddAuthorizedKey"/> or
    /// <see cref="OssuarySession.Disconnect"/> before the session closes with Disconnect (error) and
    /// <see cref="OssuaryErrorReason.HandshakeTimeout"/>. Default 1 minute. The original waits forever.
    /// </summary>
    public TimeSpan TrustDecisionTimeout { get; set; } = DefaultTrustDecisionTimeout;

    /// <summary>
    /// Authenticated servers only. True (the default): a client whose key is not on the allow-list,
    /// or an anonymous one, is refused at once with Disconnect (error); the original client then
    /// reports "connection failed". False: behave as libossuary 0.5 does, resetting as on any
    /// recoverable error until the fifth reset fails the connection (26 packets later). Either way
    /// a presented key's signature is checked before the allow-list: a key that did not sign is a
    /// bad signature (a reset) whether the list holds it or not, so refusals reveal nothing about
    /// the list to a client that cannot sign.
    /// </summary>
    public bool RefuseUnauthorizedClientsAtOnce { get; set; } = true;

    /// <summary>The clock for <see cref="HandshakeTimeout"/>, <see cref="ResetTimeout"/> and <see cref="TrustDecisionTimeout"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
