using Microsoft.Extensions.Logging;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// The library's log lines, with stable event ids (the README lists them). Failures a peer causes
/// are Debug: a server must not let strangers fill its logs. Failures that are ours (a throwing
/// callback, a disposed identity, a bug) are Error, limited per cause by <see cref="FaultLogLimiter"/>.
/// No key material beyond public keys is ever logged.
/// </summary>
internal static partial class OssuaryLog
{
    [LoggerMessage(1, LogLevel.Debug, "Ossuary handshake started as {Role} on connection {ConnectionId}.")]
    public static partial void HandshakeStarted(ILogger logger, OssuaryRole role, string? connectionId);

    [LoggerMessage(2, LogLevel.Debug, "Ossuary handshake completed as {Role} on connection {ConnectionId} in {ElapsedMilliseconds:0.0} ms; peer key {RemotePublicKey}.")]
    public static partial void HandshakeCompleted(ILogger logger, OssuaryRole role, string? connectionId, double elapsedMilliseconds, OssuaryPublicKey? remotePublicKey);

    [LoggerMessage(3, LogLevel.Debug, "Ossuary handshake failed as {Role} on connection {ConnectionId}: {Reason}.")]
    public static partial void HandshakeFailed(ILogger logger, OssuaryRole role, string? connectionId, OssuaryErrorReason reason, Exception exception);

    [LoggerMessage(4, LogLevel.Debug, "Ossuary handshake timed out as {Role} on connection {ConnectionId} after {TimeoutMilliseconds} ms.")]
    public static partial void HandshakeTimedOut(ILogger logger, OssuaryRole role, string? connectionId, double timeoutMilliseconds);

    [LoggerMessage(5, LogLevel.Debug, "Ossuary connection {ConnectionId} ended with an error: {Reason}.")]
    public static partial void ConnectionFailed(ILogger logger, string? connectionId, OssuaryErrorReason reason, Exception exception);

    [LoggerMessage(EventId = 6, Message = "Ossuary handshake failed as {Role} on connection {ConnectionId} because of this side, not the peer ({Cause}); the peer was sent Disconnect (error). Held back since the last report of this cause: {HeldBack}.")]
    public static partial void HandshakeFaulted(ILogger logger, LogLevel level, OssuaryRole role, string? connectionId, string cause, int heldBack, Exception exception);

    [LoggerMessage(EventId = 7, Message = "Ossuary connection {ConnectionId} failed because of this side, not the peer ({Cause}); the peer was sent Disconnect (error) where the transport still allowed it. Held back since the last report of this cause: {HeldBack}.")]
    public static partial void ConnectionFaulted(ILogger logger, LogLevel level, string? connectionId, string cause, int heldBack, Exception exception);

    [LoggerMessage(8, LogLevel.Debug, "Ossuary handshake as {Role} on connection {ConnectionId} was cancelled by its caller.")]
    public static partial void HandshakeCancelled(ILogger logger, OssuaryRole role, string? connectionId);

    [LoggerMessage(EventId = 9, Message = "A ConnectionClosed callback of Ossuary connection {ConnectionId} threw; the connection closed all the same. Held back since the last report of this cause: {HeldBack}.")]
    public static partial void ConnectionClosedCallbackFailed(ILogger logger, LogLevel level, string? connectionId, int heldBack, Exception exception);

    [LoggerMessage(10, LogLevel.Warning, "The unauthenticated Ossuary server has no identity configured; generated one with public key {PublicKey} for this process. Clients cannot pin a key that changes on restart: set OssuaryServerOptions.Identity.")]
    public static partial void GeneratedServerIdentity(ILogger logger, OssuaryPublicKey publicKey);

    // Warning, not Debug: neither the peer's doing nor a fault of the library, but the caller's transport (a stream
    // written for synchronous reading), which holds a read and the session's key until it is closed. Once a connection,
    // and limited as faults of ours are (Debug when held back): an application whose every connection runs over such
    // a stream would otherwise warn on each.
    [LoggerMessage(EventId = 11, Message = "Disposal of Ossuary connection {ConnectionId} gave up after {Seconds} s on a read of its transport that did not end when cancelled (a stream written for synchronous reading, such as a process's stdio pipes?): the read stays pending, and the session's key in memory, until the transport ends it; close the transport (the inner stream) to end it. Held back since the last report of this cause: {HeldBack}.")]
    public static partial void DisposalGaveUpOnARead(ILogger logger, LogLevel level, string? connectionId, double seconds, int heldBack);

    // Warning, as Kestrel's own refusal beyond MaxConcurrentConnections: whoever filled the bound (a flood, or a
    // limit set too low for honest load), honest clients are being turned away, and the operator must learn it with
    // Debug off. At most once a minute: the flood this reports would otherwise write a line for each connection it sends.
    [LoggerMessage(12, LogLevel.Warning, "Ossuary server closed connection {ConnectionId} unheard: {MaxPendingHandshakes} handshakes were already under way (OssuaryServerOptions.MaxPendingHandshakes). Closed so since the last report of this, at most one a minute: {HeldBack}.")]
    public static partial void ConnectionRejected(ILogger logger, string? connectionId, int maxPendingHandshakes, int heldBack);

    // 20-29: configuration, reload and rotation.
    [LoggerMessage(EventId = 20, Message = "The Ossuary server's IdentitySelector failed on connection {ConnectionId}; the connection is closed without a handshake. Held back since the last report of this cause: {HeldBack}.")]
    public static partial void IdentitySelectorFailed(ILogger logger, LogLevel level, string? connectionId, int heldBack, Exception exception);

    [LoggerMessage(21, LogLevel.Information, "Ossuary authorized keys reloaded from {Path}: {KeyCount} keys.")]
    public static partial void AuthorizedKeysReloaded(ILogger logger, string path, int keyCount);

    [LoggerMessage(22, LogLevel.Error, "Ossuary authorized keys file {Path} could not be reloaded; the previous keys stay in force until it is fixed.")]
    public static partial void AuthorizedKeysReloadFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(23, LogLevel.Error, "Ossuary authorized keys file {Path} is gone; no client is admitted from it until it is back.")]
    public static partial void AuthorizedKeysFileMissing(ILogger logger, string path);

    [LoggerMessage(30, LogLevel.Error, "A MeterListener's measurement callback threw while the meter Ossuary.Pipelines recorded a measurement (an exporter's or the application's bug); the measurement is dropped and the connection goes on. Said once for these instruments: their later measurements may be dropped as well.")]
    public static partial void MeterListenerFailed(ILogger logger, Exception exception);

    [LoggerMessage(29, LogLevel.Error, "Ossuary authorized keys file {Path} could not be watched (the system's inotify limits, or a folder closed to this process?); it is read again every second instead, and watched again once it can be.")]
    public static partial void AuthorizedKeysNotWatched(ILogger logger, string path, Exception exception);

    [LoggerMessage(24, LogLevel.Error, "The changed Ossuary options '{OptionsName}' are invalid; the previous options stay in force until they are fixed.")]
    public static partial void OptionsReloadFailed(ILogger logger, string optionsName, Exception exception);

    [LoggerMessage(27, LogLevel.Error, "The identity key file {Path} of the changed Ossuary options '{OptionsName}' could not be read; this side goes on presenting the key it presented before, {PublicKey}, the rest of the change is in force, and the file is read again every second until its key can be presented (event 25 then).")]
    public static partial void IdentityKeyFileKept(ILogger logger, string path, string optionsName, OssuaryPublicKey publicKey, Exception exception);

    [LoggerMessage(EventId = 26, Message = "TCP keep-alive could not be set on Ossuary connection {ConnectionId}; it goes on without (a peer that vanishes is not noticed). Held back since the last report of this cause: {HeldBack}.")]
    public static partial void KeepAliveNotSet(ILogger logger, LogLevel level, string? connectionId, int heldBack, Exception exception);

    [LoggerMessage(28, LogLevel.Warning, "Ossuary known-hosts file {Path}:{Line} is a last line cut short, what a crash or a power cut leaves of a key being recorded: it is left out (it trusts no server), a key recorded then is not in the file, and the next key recorded takes the line's place.")]
    public static partial void KnownHostsLastLineCut(ILogger logger, string path, int line);

    [LoggerMessage(25, LogLevel.Information, "Ossuary options '{OptionsName}' reloaded: identity {Identity}, {KeyCount} listed peer keys (a server's authorized client keys, a client's trusted server keys).")]
    private static partial void OptionsReloaded(ILogger logger, string optionsName, string identity, int keyCount);

    /// <summary>
    /// Event 25 for <paramref name="plan"/>: its key, or, for a server whose <c>IdentitySelector</c> chooses it,
    /// that it is chosen per connection. The plan of a selector without a default has no key, and its
    /// "identity" read as the anonymous key: as if the server presented none.
    /// </summary>
    public static void OptionsReloaded(ILogger logger, string optionsName, HandshakePlan plan, int keyCount)
    {
        string identity = (plan.IdentitySelector is null, plan.HasIdentity) switch
        {
            (true, _) => plan.LocalPublicKey.ToString(),
            (false, true) => $"{plan.LocalPublicKey} unless the IdentitySelector chooses another per connection",
            (false, false) => "chosen per connection by the IdentitySelector",
        };
        OptionsReloaded(logger, optionsName, identity, keyCount);
    }
}
