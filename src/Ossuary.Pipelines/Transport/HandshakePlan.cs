using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// A validated snapshot of client or server options: everything one handshake needs. Servers
/// build one at start-up (and again whenever their options or authorized-keys file change) and
/// reuse it for every connection.
/// </summary>
internal sealed class HandshakePlan
{
    private OssuaryIdentity? _identity;
    private readonly OssuaryPublicKey[] _sessionKeys;
    private HashSet<OssuaryPublicKey> _admittedClients;
    private readonly TimeSpan _stepTimeout;

    // An identity this plan read from IdentityKeyFile itself: nobody else holds it, so it is freed
    // (ReleaseOwnIdentity) once the handshake of the connection the plan was made for is over, or,
    // for a shared plan, once the plan is replaced and the last handshake that took it is over.
    private bool _identityFromFile;

    // What CreateSession hands every session of this plan (a session copies what it keeps, so they
    // can share it): made on first use, forgotten by WithIdentity's copy.
    private OssuarySessionOptions? _sessionOptions;

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

    /// <summary>The client's trust decision for one server key; bound to an endpoint by <see cref="ForEndPoint"/>.</summary>
    public Func<OssuaryPublicKey, CancellationToken, ValueTask<bool>>? TrustServer { get; private set; }

    public bool AdmitsAnyClient => Role == OssuaryRole.UnauthenticatedServer;

    public Func<OssuaryPublicKey, ConnectionContext?, CancellationToken, ValueTask<bool>>? AuthorizeClient { get; private init; }

    /// <summary>
    /// The plan in force now, for a server whose plans a listener's source replaces as its options or
    /// authorized-keys file change (<c>ServerPlanSource</c>): its allow-list and <c>AuthorizeClient</c> decide
    /// admission, once the client's signature is verified. Null: this plan decides (a bare pipe, a stream).
    /// </summary>
    /// <remarks>
    /// A connection keeps the plan it took at its accept for its identity, which must stay alive while it
    /// signs; decided with that plan's list, a key revoked while its handshake was under way (a client
    /// pausing before its ClientAuthentication, within the server's timeouts) was admitted after the
    /// revocation, once the operator had closed the key's established connections.
    /// </remarks>
    public Func<HandshakePlan>? InForce { get; set; }

    /// <summary>The server's per-connection identity choice (Kestrel's ServerCertificateSelector).</summary>
    public Func<ConnectionContext?, OssuaryIdentity?>? IdentitySelector { get; private init; }

    public OssuaryPublicKey LocalPublicKey => _identity?.PublicKey ?? OssuaryPublicKey.Anonymous;

    public bool HasIdentity => _identity is not null;

    /// <summary>The identity presented by default (before any selector), if any.</summary>
    public OssuaryIdentity? Identity => _identity;

    /// <summary>Whether the server presents <paramref name="identity"/> (by default, before any selector).</summary>
    public bool Presents(OssuaryIdentity? identity) => identity is not null && ReferenceEquals(_identity, identity);

    public ILoggerFactory? LoggerFactory { get; private init; }

    public IMeterFactory? MeterFactory { get; private init; }

    public TimeSpan ConnectTimeout { get; private init; } = System.Threading.Timeout.InfiniteTimeSpan;

    /// <summary>The options' <c>TcpKeepAlive</c>, for whoever holds the socket.</summary>
    public TimeSpan TcpKeepAlive { get; private init; } = System.Threading.Timeout.InfiniteTimeSpan;

    /// <summary>The client options' way to set <see cref="TcpKeepAlive"/> (a test's seam).</summary>
    public Action<System.Net.Sockets.Socket, TimeSpan> KeepAliveSetter { get; private init; } = Integrations.TcpKeepAlive.Apply;

    /// <summary>A server's <c>MaxPendingHandshakes</c>: how many connections its listener lets into their handshake at once.</summary>
    public int MaxPendingHandshakes { get; private init; } = int.MaxValue;

    /// <summary>The options' internal <c>CloseWait</c>: each connection's bound on waiting for its peer as it ends (see <see cref="OssuaryDuplexPipe.DefaultCloseWait"/>).</summary>
    public TimeSpan CloseWait { get; private init; } = OssuaryDuplexPipe.DefaultCloseWait;

    /// <summary>How many client keys this plan admits by list (options and file together).</summary>
    public int AdmittedKeyCount => _admittedClients.Count;

    /// <summary>How many server keys this client plan trusts by list.</summary>
    public int TrustedKeyCount => _sessionKeys.Length;

    private Func<OssuaryServerTrustContext, CancellationToken, ValueTask<bool>>? TrustServerAtEndPoint { get; init; }

    /// <exception cref="InvalidOperationException">The options are invalid.</exception>
    /// <exception cref="FormatException">The identity key file is malformed.</exception>
    /// <exception cref="IOException">The identity key file cannot be read.</exception>
    /// <param name="options">The client options to validate and copy.</param>
    /// <param name="keptFromFile">The identity an earlier plan read from the same <see cref="OssuaryClientOptions.IdentityKeyFile"/>,
    /// presented instead of reading the file again (which could not be read); not this plan's to free.</param>
    /// <param name="readFromFile">The identity the caller has just read from <see cref="OssuaryClientOptions.IdentityKeyFile"/>
    /// (a reload reads it without waiting for a pipe's writer), presented instead of reading the file here; this plan's
    /// to free, as one read here would be (the caller frees it if this throws).</param>
    public static HandshakePlan ForClient(OssuaryClientOptions options, OssuaryIdentity? keptFromFile = null, OssuaryIdentity? readFromFile = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        OssuaryIdentity? identity = options.Identity ?? keptFromFile ?? readFromFile ?? ReadIdentity(options.IdentityKeyFile);
        var plan = new HandshakePlan(OssuaryRole.Client, identity, options.TrustedServerKeys, options.HandshakeTimeout, options.HandshakeStepTimeout, options.TimeProvider)
        {
            TrustServerAtEndPoint = options.TrustServerAtEndPoint,
            LoggerFactory = options.LoggerFactory,
            MeterFactory = options.MeterFactory,
            ConnectTimeout = options.ConnectTimeout,
            TcpKeepAlive = options.TcpKeepAlive,
            KeepAliveSetter = options.KeepAliveSetter,
            CloseWait = options.CloseWait,
        };
        plan.TrustServer = options.TrustServer ?? plan.BindTrust(null, null);
        plan._identityFromFile = options.Identity is null && identity is not null && keptFromFile is null;
        return plan;
    }

    /// <param name="options">The server options to validate and copy.</param>
    /// <param name="generatedIdentity">Set when an unauthenticated server had no identity and one was made; the caller owns and logs it.</param>
    /// <exception cref="InvalidOperationException">The options are invalid.</exception>
    /// <exception cref="FormatException">A key file is malformed; the message names the file.</exception>
    /// <exception cref="IOException">A key file cannot be read.</exception>
    public static HandshakePlan ForServer(OssuaryServerOptions options, out OssuaryIdentity? generatedIdentity)
    {
        ArgumentNullException.ThrowIfNull(options); // before its key file is read: null is the caller's ArgumentNullException

        // Before the file is opened too, as UseOssuary and the options validator do: a path no file can have
        // failed with the file API's ArgumentException, naming no setting, and options that refuse the file
        // (an unauthenticated server given one) failed on reading it instead of saying what to fix.
        options.Validate();
        return ForServer(options, options.AuthorizedKeysFile is { } file ? OssuaryAuthorizedKeys.Load(file) : [], out generatedIdentity);
    }

    /// <summary>As above, with the keys of <see cref="OssuaryServerOptions.AuthorizedKeysFile"/> already read (by its watcher).</summary>
    /// <param name="options">The server options to validate and copy.</param>
    /// <param name="fileKeys">The keys of the authorized-keys file.</param>
    /// <param name="generatedIdentity">Set when an identity had to be generated; the caller owns and logs it.</param>
    /// <param name="generatedBefore">An identity generated by an earlier build of the same server, kept so that reloads do not change its key.</param>
    /// <param name="keptFromFile">The identity an earlier plan read from the same <see cref="OssuaryServerOptions.IdentityKeyFile"/>,
    /// presented instead of reading the file again (which could not be read); not this plan's to free.</param>
    /// <param name="readFromFile">The identity the caller has just read from <see cref="OssuaryServerOptions.IdentityKeyFile"/>
    /// (a reload reads it before it takes its locks), presented instead of reading the file here; this plan's to free,
    /// as one read here would be (the caller frees it if this throws).</param>
    public static HandshakePlan ForServer(OssuaryServerOptions options, IEnumerable<OssuaryPublicKey> fileKeys, out OssuaryIdentity? generatedIdentity, OssuaryIdentity? generatedBefore = null, OssuaryIdentity? keptFromFile = null, OssuaryIdentity? readFromFile = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        OssuaryIdentity? identity = options.Identity ?? keptFromFile ?? readFromFile ?? ReadIdentity(options.IdentityKeyFile) ?? generatedBefore;
        generatedIdentity = identity is null && options.IdentitySelector is null ? OssuaryIdentity.Generate() : null;
        bool open = options.Mode == OssuaryServerMode.Unauthenticated;
        var plan = new HandshakePlan(
            open ? OssuaryRole.UnauthenticatedServer : OssuaryRole.AuthenticatedServer,
            identity ?? generatedIdentity, [], options.HandshakeTimeout, options.HandshakeStepTimeout, options.TimeProvider)
        {
            AuthorizeClient = options.AuthorizeClient,
            IdentitySelector = options.IdentitySelector,
            LoggerFactory = options.LoggerFactory,
            MeterFactory = options.MeterFactory,
            TcpKeepAlive = options.TcpKeepAlive,
            CloseWait = options.CloseWait,
            MaxPendingHandshakes = options.MaxPendingHandshakes,
        };
        plan._identityFromFile = options.Identity is null && options.IdentityKeyFile is not null && keptFromFile is null;
        plan._admittedClients.UnionWith(options.AuthorizedClientKeys);
        plan._admittedClients.UnionWith(fileKeys);
        return plan;
    }

    /// <summary>
    /// Zeroes and frees the identity this plan read from its key file, for a plan made for one
    /// connection (or one validation) whose handshake is over: the secret is needed only to sign
    /// during the handshake. Left to the finalizer, each connect's copy of the seed stayed in memory
    /// until a collection came. A plan shared by many connections (a server's, a connection
    /// factory's) is released through its <c>SharedPlan</c>, when the last handshake holding it is over.
    /// </summary>
    public void ReleaseOwnIdentity()
    {
        if (_identityFromFile)
        {
            _identity?.Dispose();
        }
    }

    /// <summary>This plan for a connection to <paramref name="endPoint"/>: the trust callback learns where it is.</summary>
    public HandshakePlan ForEndPoint(EndPoint? endPoint, EndPoint? remoteEndPoint)
    {
        if (TrustServerAtEndPoint is null)
        {
            return this;
        }

        var copy = (HandshakePlan)MemberwiseClone();
        copy.TrustServer = BindTrust(endPoint, remoteEndPoint);
        return copy;
    }

    /// <summary>This plan with the identity a server's selector chose for one connection.</summary>
    public HandshakePlan WithIdentity(OssuaryIdentity identity)
    {
        var copy = (HandshakePlan)MemberwiseClone();
        copy._identity = identity;
        copy._identityFromFile = false; // the selector's, not ours to free
        copy._sessionOptions = null;
        return copy;
    }

    /// <summary>
    /// This server plan with another allow-list (the options' keys and an authorized-keys file's) and
    /// everything else, the identity included, as it is: an authorized-keys file that changed must
    /// take effect without the identity key file being read again. The copy does not own the identity:
    /// whoever frees this plan's frees it (<c>SharedPlan</c> keeps this plan held while the copy is in use).
    /// </summary>
    public HandshakePlan WithAdmittedClients(IEnumerable<OssuaryPublicKey> optionKeys, IEnumerable<OssuaryPublicKey> fileKeys)
    {
        var copy = (HandshakePlan)MemberwiseClone();
        copy._admittedClients = [.. optionKeys, .. fileKeys];
        copy._identityFromFile = false;
        return copy;
    }

    /// <summary>
    /// The core always runs servers as unauthenticated (it still verifies every presented
    /// signature); admission is decided here, after the handshake, so that an asynchronous
    /// callback can take part. A refused client gets Disconnect (error) before any data.
    /// </summary>
    /// <exception cref="InvalidOperationException">A server has no identity (its selector returned none and no default is set).</exception>
    public OssuarySession CreateSession()
    {
        if (_identity is null && Role != OssuaryRole.Client)
        {
            throw new InvalidOperationException(
                "OssuaryServerOptions.IdentitySelector returned null and no default Identity or IdentityKeyFile is set: the server has no key to present.");
        }

        return new OssuarySession(_sessionOptions ??= SessionOptions());
    }

    private OssuarySessionOptions SessionOptions()
    {
        var options = new OssuarySessionOptions
        {
            Role = Role == OssuaryRole.Client ? OssuaryRole.Client : OssuaryRole.UnauthenticatedServer,
            Identity = _identity,
            HandshakeTimeout = _stepTimeout,

            // TrustServer is bounded by the whole handshake's timeout (HandshakeTimer): the core must not
            // close a session whose callback the handshake still waits for (its default is 1 min).
            TrustDecisionTimeout = Timeout,
            TimeProvider = TimeProvider,
        };
        foreach (OssuaryPublicKey key in _sessionKeys)
        {
            options.AuthorizedKeys.Add(key);
        }

        return options;
    }

    /// <summary>Whether <paramref name="client"/>, whose key the handshake verified, is admitted: by the plan <see cref="InForce"/> now, if any.</summary>
    public async ValueTask<bool> AdmitsAsync(OssuaryPublicKey client, ConnectionContext? connection, CancellationToken cancellationToken)
    {
        HandshakePlan deciding = InForce?.Invoke() ?? this;
        if (deciding.AdmitsAnyClient)
        {
            return true;
        }

        if (client.IsAnonymous)
        {
            return false;
        }

        return deciding._admittedClients.Contains(client)
            || (deciding.AuthorizeClient is { } authorize && await Ask(authorize, client, connection, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// The application's callback, run on the thread pool rather than inline: one that blocks before it
    /// returns its task (a synchronous lookup stuck on a dead database, wrapped in a finished ValueTask)
    /// held the handshake where its timeout could not reach it, so the connection waited for as long as
    /// the callback did (admitted after the timeout, or never ended), its client never told. Its thread
    /// stays blocked, but the handshake gives up on it at the timeout, as on a task that never completes.
    /// </summary>
    private static Task<bool> Ask(Func<OssuaryPublicKey, ConnectionContext?, CancellationToken, ValueTask<bool>> authorize, OssuaryPublicKey client, ConnectionContext? connection, CancellationToken cancellationToken) =>
        Task.Run(() => authorize(client, connection, cancellationToken).AsTask(), CancellationToken.None);

    private Func<OssuaryPublicKey, CancellationToken, ValueTask<bool>>? BindTrust(EndPoint? endPoint, EndPoint? remoteEndPoint) =>
        TrustServerAtEndPoint is { } decide
            ? (key, cancellationToken) => decide(new OssuaryServerTrustContext(key, endPoint, remoteEndPoint), cancellationToken)
            : null;

    private static OssuaryIdentity? ReadIdentity(string? keyFile) => keyFile is null ? null : OssuarySecretKeyFile.Read(keyFile);
}
