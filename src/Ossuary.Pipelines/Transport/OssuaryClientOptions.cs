namespace Ossuary.Pipelines.Transport;

/// <summary>Settings of an Ossuary client; validated and copied when the handshake starts.</summary>
public sealed class OssuaryClientOptions
{
    /// <summary>The client's identity; null connects anonymously (accepted only by unauthenticated servers). Not disposed by the library.</summary>
    public OssuaryIdentity? Identity { get; set; }

    /// <summary>Server keys the client trusts without asking.</summary>
    public ICollection<OssuaryPublicKey> TrustedServerKeys { get; } = new List<OssuaryPublicKey>();

    /// <summary>
    /// Asked when the server proves a key that is not in <see cref="TrustedServerKeys"/>; true trusts it
    /// for this connection (trust on first use: record it, e.g. in a known-hosts file). Without a
    /// callback an unknown server is refused with <see cref="OssuaryErrorReason.UntrustedServer"/>.
    /// </summary>
    public Func<OssuaryPublicKey, CancellationToken, ValueTask<bool>>? TrustServer { get; set; }

    /// <summary>Bound on the whole handshake, re-handshakes included. Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = OssuaryServerOptions.DefaultHandshakeTimeout;

    /// <summary>The protocol core's wait for each handshake packet before it resets. Default 3 s, as the original.</summary>
    public TimeSpan HandshakeStepTimeout { get; set; } = Protocol.OssuarySessionOptions.DefaultHandshakeTimeout;

    /// <summary>The clock for both timeouts.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    internal void Validate() => OssuaryServerOptions.ValidateTimeouts(HandshakeTimeout, HandshakeStepTimeout, TimeProvider);
}
