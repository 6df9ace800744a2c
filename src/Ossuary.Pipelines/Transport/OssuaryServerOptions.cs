using Microsoft.AspNetCore.Connections;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// Settings of an Ossuary server. They are validated and copied when the pipeline is built
/// (<c>UseOssuary</c>) or the handshake starts, so later changes have no effect.
/// </summary>
public sealed class OssuaryServerOptions
{
    /// <summary>Default bound on the whole handshake, re-handshakes included (Kestrel's TLS default).</summary>
    public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The server's identity. Required in <see cref="OssuaryServerMode.Authenticated"/> mode (clients
    /// pin it). In <see cref="OssuaryServerMode.Unauthenticated"/> mode a missing key is generated once,
    /// with a warning, and lives as long as the server. Not disposed by the library.
    /// </summary>
    public OssuaryIdentity? Identity { get; set; }

    /// <summary>Whom the server admits. Default: <see cref="OssuaryServerMode.Authenticated"/>.</summary>
    public OssuaryServerMode Mode { get; set; } = OssuaryServerMode.Authenticated;

    /// <summary>
    /// Client keys admitted in <see cref="OssuaryServerMode.Authenticated"/> mode. Setting any in
    /// <see cref="OssuaryServerMode.Unauthenticated"/> mode is refused at start-up, since that mode admits everyone.
    /// </summary>
    public ICollection<OssuaryPublicKey> AuthorizedClientKeys { get; } = new List<OssuaryPublicKey>();

    /// <summary>
    /// Asked in <see cref="OssuaryServerMode.Authenticated"/> mode about a client whose proven key is
    /// not in <see cref="AuthorizedClientKeys"/>; true admits it. The connection is null when a bare
    /// pipe is secured without a <see cref="ConnectionContext"/>. Refused at start-up in
    /// <see cref="OssuaryServerMode.Unauthenticated"/> mode, which would never ask it. A callback that
    /// throws refuses the client with Disconnect (error) and is logged at Error: the failure is the server's.
    /// </summary>
    public Func<OssuaryPublicKey, ConnectionContext?, CancellationToken, ValueTask<bool>>? AuthorizeClient { get; set; }

    /// <summary>Bound on the whole handshake, re-handshakes included. Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = DefaultHandshakeTimeout;

    /// <summary>The protocol core's wait for each handshake packet before it resets. Default 3 s, as the original.</summary>
    public TimeSpan HandshakeStepTimeout { get; set; } = Protocol.OssuarySessionOptions.DefaultHandshakeTimeout;

    /// <summary>The clock for both timeouts.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Throws with a message that says what to fix.</summary>
    internal void Validate()
    {
        if (Mode == OssuaryServerMode.Authenticated)
        {
            if (Identity is null)
            {
                throw new InvalidOperationException(
                    "An authenticated Ossuary server needs OssuaryServerOptions.Identity: clients pin the server's key. " +
                    "Load one with OssuaryIdentity.FromSeed/ParseSeedHex, or use Mode = Unauthenticated.");
            }

            if (AuthorizedClientKeys.Count == 0 && AuthorizeClient is null)
            {
                throw new InvalidOperationException(
                    "An authenticated Ossuary server admits nobody: add keys to OssuaryServerOptions.AuthorizedClientKeys, " +
                    "set AuthorizeClient, or use Mode = Unauthenticated to admit any client.");
            }
        }
        else if (Mode == OssuaryServerMode.Unauthenticated)
        {
            // Fail closed: an allow-list the mode would ignore looks like protection and is none.
            if (AuthorizedClientKeys.Count > 0 || AuthorizeClient is not null)
            {
                string ignored = AuthorizedClientKeys.Count > 0 && AuthorizeClient is not null
                    ? "AuthorizedClientKeys and AuthorizeClient"
                    : AuthorizedClientKeys.Count > 0 ? "AuthorizedClientKeys" : "AuthorizeClient";
                throw new InvalidOperationException(
                    $"An unauthenticated Ossuary server admits any client, so it would ignore OssuaryServerOptions.{ignored}. " +
                    "Use Mode = Authenticated to admit only those clients, or remove the allow-list to admit everyone.");
            }
        }
        else
        {
            throw new InvalidOperationException($"OssuaryServerOptions.Mode {(int)Mode} is not a valid mode.");
        }

        ValidateTimeouts(HandshakeTimeout, HandshakeStepTimeout, TimeProvider);
    }

    internal static void ValidateTimeouts(TimeSpan handshake, TimeSpan step, TimeProvider? time)
    {
        if (handshake <= TimeSpan.Zero)
        {
            throw new InvalidOperationException("HandshakeTimeout must be positive (default 10 s).");
        }

        if (step <= TimeSpan.Zero)
        {
            throw new InvalidOperationException("HandshakeStepTimeout must be positive (default 3 s).");
        }

        if (time is null)
        {
            throw new InvalidOperationException("TimeProvider must not be null (use TimeProvider.System).");
        }
    }
}
