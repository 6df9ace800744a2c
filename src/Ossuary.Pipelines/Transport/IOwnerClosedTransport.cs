namespace Ossuary.Pipelines.Transport;

/// <summary>
/// A transport whose owner may close it under a handshake on purpose, and says so first: an
/// <c>OssuaryStream</c> disposed while it authenticates ("dispose to cancel", as with any stream).
/// The failure that follows (the inner stream's <see cref="ObjectDisposedException"/> or
/// <see cref="IOException"/>) is then the caller giving up, as with a cancelled token: neither a
/// fault of this side (logged at Error) nor the peer's.
/// </summary>
internal interface IOwnerClosedTransport
{
    /// <summary>True once the owner has begun closing the transport's stream.</summary>
    bool ClosedByOwner { get; }
}
