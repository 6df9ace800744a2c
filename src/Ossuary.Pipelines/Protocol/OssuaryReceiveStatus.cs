namespace Ossuary.Pipelines.Protocol;

/// <summary>What <see cref="OssuarySession.Receive"/> did with its input.</summary>
public enum OssuaryReceiveStatus
{
    /// <summary>No whole packet yet; nothing was consumed. Call again with more input.</summary>
    NeedMoreData,

    /// <summary>A handshake packet was consumed (or a packet the current state ignores). Check <see cref="OssuarySession.State"/> and write pending output.</summary>
    Handshake,

    /// <summary>Client only: the handshake paused because the server's key is not trusted. See <see cref="OssuarySessionState.AwaitingTrust"/>.</summary>
    UntrustedServer,

    /// <summary>One EncryptedData packet was decrypted: <see cref="OssuaryReceiveResult.PlaintextLength"/> bytes (possibly 0) were written to the plaintext writer.</summary>
    Data,

    /// <summary>The session was reset (by the peer, or because the input broke the protocol); it will handshake again. The reason says why.</summary>
    Reset,

    /// <summary>The session ended: cleanly (<see cref="OssuaryErrorReason.ConnectionClosed"/>) or with the failure the reason names.</summary>
    Closed,
}
