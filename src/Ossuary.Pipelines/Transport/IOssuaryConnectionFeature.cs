namespace Ossuary.Pipelines.Transport;

/// <summary>What the Ossuary handshake established, set on the connection's features.</summary>
public interface IOssuaryConnectionFeature
{
    /// <summary>The side this end played.</summary>
    OssuaryRole Role { get; }

    /// <summary>The peer's proven key; null for an anonymous client.</summary>
    OssuaryPublicKey? RemotePublicKey { get; }

    /// <summary>This end's key (<see cref="OssuaryPublicKey.Anonymous"/> for an anonymous client).</summary>
    OssuaryPublicKey LocalPublicKey { get; }

    /// <summary>How long the handshake took, re-handshakes included.</summary>
    TimeSpan HandshakeDuration { get; }
}

internal sealed class OssuaryConnectionFeature(OssuaryRole role, OssuaryPublicKey? remote, OssuaryPublicKey local, TimeSpan duration)
    : IOssuaryConnectionFeature
{
    public OssuaryRole Role { get; } = role;

    public OssuaryPublicKey? RemotePublicKey { get; } = remote;

    public OssuaryPublicKey LocalPublicKey { get; } = local;

    public TimeSpan HandshakeDuration { get; } = duration;
}
