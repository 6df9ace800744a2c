using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// A validated snapshot of client or server options: everything one handshake needs. Servers
/// build one at start-up and reuse it for every connection.
/// </summary>
internal sealed class HandshakePlan
{
    private readonly OssuaryIdentity? _identity;
    private readonly OssuaryPublicKey[] _sessionKeys;
    private readonly HashSet<OssuaryPublicKey> _admittedClients;
    private readonly TimeSpan _stepTimeout;

    private HandshakePlan(OssuaryRole role, OssuaryIdentity? identity, IEnumerable<OssuaryPublicKey> sessionKeys, TimeSpan timeout, TimeSpan stepTimeout, TimeProvider time)
    {
        Role = role;
        _identity = identity;
        _sessionKeys = [.. sessionKeys];
        _admittedClients = [];
        Timeout = timeout;
        _stepTimeout = stepTimeout;
        TimeProvider = time;
    }

    public OssuaryRole Role { get; }

    public TimeSpan Timeout { get; }

    public TimeProvider TimeProvider { get; }

    public Func<OssuaryPublicKey, CancellationToken, ValueTask<bool>>? TrustServer { get; private init; }

    public bool AdmitsAnyClient => Role == OssuaryRole.UnauthenticatedServer;

    public Func<OssuaryPublicKey, ConnectionContext?, CancellationToken, ValueTask<bool>>? AuthorizeClient { get; private init; }

    public OssuaryPublicKey LocalPublicKey => _identity?.PublicKey ?? OssuaryPublicKey.Anonymous;

    public static HandshakePlan ForClient(OssuaryClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return new HandshakePlan(OssuaryRole.Client, options.Identity, options.TrustedServerKeys, options.HandshakeTimeout, options.HandshakeStepTimeout, options.TimeProvider)
        {
            TrustServer = options.TrustServer,
        };
    }

    /// <param name="options">The server options to validate and copy.</param>
    /// <param name="generatedIdentity">Set when an unauthenticated server had no identity and one was made; the caller owns and logs it.</param>
    public static HandshakePlan ForServer(OssuaryServerOptions options, out OssuaryIdentity? generatedIdentity)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        generatedIdentity = options.Identity is null ? OssuaryIdentity.Generate() : null;
        bool open = options.Mode == OssuaryServerMode.Unauthenticated;
        var plan = new HandshakePlan(
            open ? OssuaryRole.UnauthenticatedServer : OssuaryRole.AuthenticatedServer,
            options.Identity ?? generatedIdentity, [], options.HandshakeTimeout, options.HandshakeStepTimeout, options.TimeProvider)
        {
            AuthorizeClient = options.AuthorizeClient,
        };
        plan._admittedClients.UnionWith(options.AuthorizedClientKeys);
        return plan;
    }

    /// <summary>
    /// The core always runs servers as unauthenticated (it still verifies every presented
    /// signature); admission is decided here, after the handshake, so that an asynchronous
    /// callback can take part. A refused client gets Disconnect (error) before any data.
    /// </summary>
    public OssuarySession CreateSession()
    {
        var options = new OssuarySessionOptions
        {
            Role = Role == OssuaryRole.Client ? OssuaryRole.Client : OssuaryRole.UnauthenticatedServer,
            Identity = _identity,
            HandshakeTimeout = _stepTimeout,
            TimeProvider = TimeProvider,
        };
        foreach (OssuaryPublicKey key in _sessionKeys)
        {
            options.AuthorizedKeys.Add(key);
        }

        return new OssuarySession(options);
    }

    public async ValueTask<bool> AdmitsAsync(OssuaryPublicKey client, ConnectionContext? connection, CancellationToken cancellationToken)
    {
        if (AdmitsAnyClient)
        {
            return true;
        }

        if (client.IsAnonymous)
        {
            return false;
        }

        return _admittedClients.Contains(client)
            || (AuthorizeClient is not null && await AuthorizeClient(client, connection, cancellationToken).ConfigureAwait(false));
    }
}
