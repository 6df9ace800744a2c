namespace Ossuary.Pipelines.Protocol;

/// <summary>Where an <see cref="OssuarySession"/> stands, as its user needs to know it.</summary>
public enum OssuarySessionState
{
    /// <summary>The handshake is under way (re-handshakes after a reset included).</summary>
    Handshaking,

    /// <summary>
    /// Client only: the server proved its identity with a key the client does not trust. The
    /// handshake waits until the application trusts <see cref="OssuarySession.RemotePublicKey"/>
    /// (<see cref="OssuarySession.AddAuthorizedKey"/>) or gives up (<see cref="OssuarySession.Disconnect"/>).
    /// </summary>
    AwaitingTrust,

    /// <summary>Records can be sent and received.</summary>
    Established,

    /// <summary>A Reset was sent or is about to be; the session will handshake again.</summary>
    Resetting,

    /// <summary>The session has ended; a final Disconnect (or the original's Reset reply) may still be waiting to be written.</summary>
    Closing,

    /// <summary>The session has ended and has nothing more to write.</summary>
    Closed,
}
