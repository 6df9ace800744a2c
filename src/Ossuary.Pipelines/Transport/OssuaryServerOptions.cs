using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// Settings of an Ossuary server. They are validated and copied when the pipeline is built
/// (<c>UseOssuary</c>) or the handshake starts, so later changes to this object have no effect;
/// options that come from DI (<c>services.AddOssuaryServer</c>, <c>UseOssuary()</c>) are rebuilt
/// whenever <c>IOptionsMonitor</c> reports a change, and <see cref="AuthorizedKeysFile"/> is
/// re-read whenever it changes on disk.
/// </summary>
public sealed class OssuaryServerOptions
{
    /// <summary>Default bound on the whole handshake, re-handshakes included (Kestrel's TLS default).</summary>
    public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Default bound on the handshakes one server has under way at once (<see cref="MaxPendingHandshakes"/>).</summary>
    public const int DefaultMaxPendingHandshakes = 4096;

    /// <summary>
    /// The server's identity. Required in <see cref="OssuaryServerMode.Authenticated"/> mode (clients
    /// pin it). In <see cref="OssuaryServerMode.Unauthenticated"/> mode a missing key (with no
    /// <see cref="IdentitySelector"/> either) is generated once, with a warning, and lives as long as
    /// the server. Not disposed by the library.
    /// </summary>
    public OssuaryIdentity? Identity { get; set; }

    /// <summary>
    /// A secret key file (<see cref="Trust.OssuarySecretKeyFile"/>: 64 hex characters, owner-only, owned by the server's user or root) to
    /// read the identity from, in place of <see cref="Identity"/>; for configuration
    /// (<c>IdentityKeyFile</c> in the options' section, e.g. <c>Ossuary:Devices:IdentityKeyFile</c>). Read when the options are applied, and again on every reload. A configuration reload reads only a regular file: a named pipe, which start-up waits on until something writes to it, is refused on a reload before it is opened (the key in force kept, said at Error), as its open would wait for ever under what revocations and the host's shutdown wait for.
    /// A relative path is resolved against the process's current directory, not the host's content root (as Kestrel's certificate paths are): a service started from another folder reads another file, or none; give an absolute path, or one built from <c>IHostEnvironment.ContentRootPath</c>.
    /// </summary>
    public string? IdentityKeyFile { get; set; }

    /// <summary>
    /// Chooses the identity per connection, the counterpart of Kestrel's <c>ServerCertificateSelector</c>:
    /// during a key rotation a server can present the new key on one endpoint or to some clients and
    /// the old one elsewhere. Null falls back to <see cref="Identity"/> (or <see cref="IdentityKeyFile"/>);
    /// where neither is set, null ends that connection as a throw does (no key is generated for a server
    /// with a selector, an unauthenticated one included). The connection is null when a bare pipe is
    /// secured. A selector that throws, or returns an identity already disposed, ends that connection and is logged at Error (event 20); under
    /// <c>UseOssuary</c>, over a bare pipe (<c>OssuaryDuplexPipe.AcceptAsync</c>) and an <c>OssuaryStream</c> the client is told with
    /// Disconnect (error), which it reports as <see cref="OssuaryErrorReason.ConnectionFailed"/>. Not disposed by the library.
    /// Under <c>UseOssuary</c>, <c>OssuaryDuplexPipe.AcceptAsync</c> and <c>OssuaryStream.AuthenticateAsServerAsync</c> it is called
    /// on the thread pool and its time counts against <see cref="HandshakeTimeout"/>: it takes no token, so one that has not returned
    /// by then (a key vault that never answers) is given up on, and the connection ends as for a throw (event 20, with a
    /// <see cref="TimeoutException"/>); its thread stays blocked until it returns, and under <c>UseOssuary</c> so does its connection's
    /// place among the <see cref="MaxPendingHandshakes"/>, so that a hung selector blocks at most that many threads. The token of <c>AcceptAsync</c> and of
    /// <c>AuthenticateAsServerAsync</c> gives it up too (<see cref="OperationCanceledException"/>; the transport is left to the
    /// caller, and the stream is spent).
    /// </summary>
    public Func<ConnectionContext?, OssuaryIdentity?>? IdentitySelector { get; set; }

    /// <summary>Whom the server admits. Default: <see cref="OssuaryServerMode.Authenticated"/>.</summary>
    public OssuaryServerMode Mode { get; set; } = OssuaryServerMode.Authenticated;

    /// <summary>
    /// Client keys admitted in <see cref="OssuaryServerMode.Authenticated"/> mode. Setting any in
    /// <see cref="OssuaryServerMode.Unauthenticated"/> mode is refused at start-up, since that mode admits everyone,
    /// and so is <see cref="OssuaryPublicKey.Anonymous"/> or the all-zero key, which no client can prove.
    /// </summary>
    public ICollection<OssuaryPublicKey> AuthorizedClientKeys => _authorizedClientKeys;

    // Not readonly: a copy (Copy) gets a list of its own.
    private List<OssuaryPublicKey> _authorizedClientKeys = [];

    /// <summary>
    /// An authorized-keys file (<see cref="Trust.OssuaryAuthorizedKeys"/>: one <c>key-hex [comment]</c>
    /// a line) whose keys are admitted besides <see cref="AuthorizedClientKeys"/>. Under <c>UseOssuary</c>
    /// the file is watched: a key added or removed takes effect from the next admission (a handshake under way included), without a
    /// restart. A file that no longer parses, that other users may write, or that another user owns,
    /// keeps the previous keys (logged at Error); a deleted file (or a link's deleted target) admits
    /// nobody from it until it is back (logged at Error, event 23). A file that other users may write, or another user owns
    /// (anyone but the server's user and root; not checked on Windows), is refused at start-up: any of
    /// them could admit their own key.
    /// A relative path is resolved against the process's current directory, not the host's content root (as Kestrel's certificate paths are): a service started from another folder reads another file, or none; give an absolute path, or one built from <c>IHostEnvironment.ContentRootPath</c>.
    /// </summary>
    public string? AuthorizedKeysFile { get; set; }

    /// <summary>
    /// Asked in <see cref="OssuaryServerMode.Authenticated"/> mode about a client whose proven key is
    /// not in <see cref="AuthorizedClientKeys"/>; true admits it. The connection is null when a bare
    /// pipe is secured without a <see cref="ConnectionContext"/>. Refused at start-up in
    /// <see cref="OssuaryServerMode.Unauthenticated"/> mode, which would never ask it. A callback that
    /// throws refuses the client with Disconnect (error) and is logged at Error: the failure is the server's.
    /// The token is cancelled when <see cref="HandshakeTimeout"/> runs out (or, for
    /// <c>OssuaryDuplexPipe.AcceptAsync</c>, by the caller's token); a callback that has not returned
    /// at the timeout refuses the client as one that throws does (and should it throw later, that is logged at Error too). It is
    /// called on the thread pool, so this holds too for one that blocks before it returns its task (its thread stays blocked
    /// until it returns). Under <c>UseOssuary</c> the token is not
    /// tied to the connection's <c>ConnectionClosed</c> token, since a client may close its socket
    /// right after sending its data and Disconnect, and that client is still served.
    /// </summary>
    public Func<OssuaryPublicKey, ConnectionContext?, CancellationToken, ValueTask<bool>>? AuthorizeClient { get; set; }

    /// <summary>Bound on the whole handshake, re-handshakes included. Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = DefaultHandshakeTimeout;

    /// <summary>
    /// Bound on the connections one server (a <c>UseOssuary</c> call, or the listeners that share its options or its
    /// name) has in its handshake at once, from Kestrel's accept until the handshake ends: the <see cref="IdentitySelector"/> (until it
    /// returns, also when it was given up on at the timeout),
    /// the handshake, <see cref="AuthorizeClient"/>, and the wait for a refused client to close its end. A connection
    /// accepted while this many are under way is closed at once, unheard, without a byte sent (its client reads the
    /// connection closed during the handshake, <see cref="OssuaryErrorReason.Truncated"/>, or reset, with a message that says the
    /// server closed it before its first handshake packet and may be at this limit): it costs no session,
    /// no timer and no selector call. Each is counted (<c>ossuary.rejected_connections</c>) and logged at Warning (event 12),
    /// at most once a minute with how many were closed since. Without a bound, peers that connect and never finish
    /// the handshake each held a session and its buffers until <see cref="HandshakeTimeout"/>, and a flood of them grew
    /// the server's memory without limit unless Kestrel's <c>MaxConcurrentConnections</c> was set. Established
    /// connections do not count. Default <see cref="DefaultMaxPendingHandshakes"/> (4,096); at least 1.
    /// Applied under <c>UseOssuary</c> only: <c>OssuaryDuplexPipe.AcceptAsync</c> and <c>OssuaryStream.AuthenticateAsServerAsync</c>
    /// secure one transport their caller accepted, and check this setting but cannot apply it; a server built on them
    /// bounds its handshakes in its own accept loop (a connection beyond the bound closed before either is called).
    /// </summary>
    public int MaxPendingHandshakes { get; set; } = DefaultMaxPendingHandshakes;

    /// <summary>The protocol core's wait for each handshake packet before it resets. Default 3 s, as the original.</summary>
    public TimeSpan HandshakeStepTimeout { get; set; } = Protocol.OssuarySessionOptions.DefaultHandshakeTimeout;

    /// <summary>
    /// TCP keep-alive for the connection's socket: after this long without a packet from the peer
    /// the system probes it, so that a peer that vanished without closing (power lost, cable pulled,
    /// a NAT that forgot the connection) fails the connection after about twice this time, instead
    /// of being waited for forever; an idle peer that is still there stays connected. This holds while
    /// this side waits for the peer (reads or is idle): the system sends no probe while bytes of ours
    /// are unacknowledged, so a side that is sending when its peer vanishes fails only once its
    /// retransmissions give up (about 15 minutes with Linux's defaults). Default 60 s;
    /// <see cref="Timeout.InfiniteTimeSpan"/> leaves the socket as the system has it (usually no
    /// keep-alive). Applies where the library has the socket: <c>UseOssuary</c> on Kestrel's socket transport (through <c>IConnectionSocketFeature</c>);
    /// a connection whose socket refuses the options goes on without, logged (event 26).
    /// </summary>
    public TimeSpan TcpKeepAlive { get; set; } = Integrations.TcpKeepAlive.Default;

    /// <summary>The clock for both timeouts (not for reading a refused change of the options again, which is real time).</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>
    /// Where handshake logs go (category <c>Ossuary.Pipelines.Server</c>). Null: the host's
    /// <see cref="ILoggerFactory"/> under <c>UseOssuary</c>, otherwise nowhere.
    /// </summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>
    /// Creates the <c>Ossuary.Pipelines</c> meter. Null: the host's <see cref="IMeterFactory"/> under
    /// <c>UseOssuary</c>, otherwise a process-wide meter.
    /// </summary>
    public IMeterFactory? MeterFactory { get; set; }

    /// <summary>
    /// How long a connection waits for its peer as it ends: for queued output to reach a peer that reads slowly,
    /// for a peer still sending after our Disconnect to close its end, and (a server) for a refused client to close
    /// its own. <see cref="OssuaryDuplexPipe.DefaultCloseWait"/> (5 s), as the public docs say; internal, so that tests of
    /// what happens when the wait runs out need not sit through the whole of it.
    /// </summary>
    internal TimeSpan CloseWait { get; set; } = OssuaryDuplexPipe.DefaultCloseWait;

    /// <summary>Settings from configuration that could not be applied (a malformed key); validation reports them.</summary>
    internal List<string> ConfigurationProblems { get; private set; } = [];

    /// <summary>
    /// What a setting's configuration key starts with ("Ossuary:Devices:", or "" at the root) when these
    /// options are bound from configuration, null otherwise: a message names the key the operator must
    /// set, not an example path that nothing of theirs reads.
    /// </summary>
    internal string? ConfigurationPrefix { get; set; }

    private string InConfiguration(string setting) =>
        ConfigurationPrefix is null ? "" : $" ({ConfigurationPrefix}{setting} in configuration)";

    /// <summary>How a message names <paramref name="setting"/>: with its configuration key when bound from configuration.</summary>
    internal string Named(string setting) => $"{nameof(OssuaryServerOptions)}.{setting}{InConfiguration(setting)}";

    /// <summary>
    /// A copy with lists of its own, which <c>UseOssuary</c> keeps so that later changes to this object
    /// have no effect: the watcher of <see cref="AuthorizedKeysFile"/> read the caller's object, and a
    /// change to its path (the object reused for the next listener) made it ignore this file from then on.
    /// </summary>
    internal OssuaryServerOptions Copy()
    {
        var copy = (OssuaryServerOptions)MemberwiseClone(); // every setting, those added later too
        copy._authorizedClientKeys = [.. _authorizedClientKeys];
        copy.ConfigurationProblems = [.. ConfigurationProblems];
        return copy;
    }

    /// <summary>Throws with a message that says what to fix.</summary>
    internal void Validate()
    {
        if (ConfigurationProblems.Count > 0)
        {
            throw new InvalidOperationException(string.Join(" ", ConfigurationProblems));
        }

        if (Mode == OssuaryServerMode.Authenticated)
        {
            if (Identity is null && IdentityKeyFile is null && IdentitySelector is null)
            {
                throw new InvalidOperationException(
                    "An authenticated Ossuary server needs OssuaryServerOptions.Identity: clients pin the server's key. " +
                    $"Load one with OssuaryIdentity.FromSeed/ParseSeedHex, set IdentityKeyFile{InConfiguration(nameof(IdentityKeyFile))} or IdentitySelector, or use Mode = Unauthenticated.");
            }

            if (AuthorizedClientKeys.Count == 0 && AuthorizeClient is null && AuthorizedKeysFile is null)
            {
                throw new InvalidOperationException(
                    $"An authenticated Ossuary server admits nobody: add keys to OssuaryServerOptions.AuthorizedClientKeys{InConfiguration(nameof(AuthorizedClientKeys) + ":0")}, " +
                    "set AuthorizedKeysFile, " +
                    "set AuthorizeClient, or use Mode = Unauthenticated to admit any client.");
            }
        }
        else if (Mode == OssuaryServerMode.Unauthenticated)
        {
            // Fail closed: an allow-list the mode would ignore looks like protection and is none.
            if (AuthorizedClientKeys.Count > 0 || AuthorizeClient is not null || AuthorizedKeysFile is not null)
            {
                string ignored = string.Join(" and ", new[]
                {
                    AuthorizedClientKeys.Count > 0 ? nameof(AuthorizedClientKeys) : null,
                    AuthorizedKeysFile is not null ? nameof(AuthorizedKeysFile) : null,
                    AuthorizeClient is not null ? nameof(AuthorizeClient) : null,
                }.OfType<string>());
                throw new InvalidOperationException(
                    $"An unauthenticated Ossuary server admits any client, so it would ignore OssuaryServerOptions.{ignored}. " +
                    $"Use Mode = Authenticated{InConfiguration(nameof(Mode))} to admit only those clients, or remove the allow-list to admit everyone.");
            }
        }
        else
        {
            throw new InvalidOperationException($"OssuaryServerOptions.Mode{InConfiguration(nameof(Mode))} {(int)Mode} is not a valid mode: use Authenticated or Unauthenticated.");
        }

        if (Identity is not null && IdentityKeyFile is not null)
        {
            throw new InvalidOperationException("Set OssuaryServerOptions.Identity or IdentityKeyFile, not both: it would be unclear which key the server presents.");
        }

        Configuration.KeyFilePath.Require(IdentityKeyFile, $"OssuaryServerOptions.{nameof(IdentityKeyFile)}", InConfiguration(nameof(IdentityKeyFile)));
        Configuration.KeyFilePath.Require(AuthorizedKeysFile, $"OssuaryServerOptions.{nameof(AuthorizedKeysFile)}", InConfiguration(nameof(AuthorizedKeysFile)));

        if (AuthorizedClientKeys.Any(key => key is null))
        {
            throw new InvalidOperationException("OssuaryServerOptions.AuthorizedClientKeys holds a null key.");
        }

        // Listed, it counted toward "admits somebody" while it matched nobody: an entry no client can prove is a mistake.
        if (AuthorizedClientKeys.FirstOrDefault(key => key.IsUnprovable) is { } unprovable)
        {
            throw new InvalidOperationException(
                $"OssuaryServerOptions.AuthorizedClientKeys holds {unprovable}, {(unprovable.IsAnonymous ? "the key an anonymous client sends" : "all zeros")}: " +
                "no client can prove it, so it admits nobody. Remove it; to admit clients without an identity, use Mode = Unauthenticated.");
        }

        ValidateTimeouts(nameof(OssuaryServerOptions), HandshakeTimeout, HandshakeStepTimeout, TimeProvider, InConfiguration);
        if (MaxPendingHandshakes < 1)
        {
            throw new InvalidOperationException(
                $"OssuaryServerOptions.MaxPendingHandshakes{InConfiguration(nameof(MaxPendingHandshakes))} is {MaxPendingHandshakes}; it must be at least 1 (default {DefaultMaxPendingHandshakes}), or the server would close every connection unheard.");
        }

        Integrations.TcpKeepAlive.Validate(TcpKeepAlive, nameof(OssuaryServerOptions), InConfiguration(nameof(TcpKeepAlive)));
    }

    /// <param name="owner">The options' type, which the message names (a process may hold a client's and a server's).</param>
    /// <param name="handshake">The options' HandshakeTimeout.</param>
    /// <param name="step">The options' HandshakeStepTimeout.</param>
    /// <param name="time">The options' TimeProvider.</param>
    /// <param name="inConfiguration">Where a setting is in configuration, for the message (" (Ossuary:Devices:HandshakeTimeout in configuration)"), or "".</param>
    internal static void ValidateTimeouts(string owner, TimeSpan handshake, TimeSpan step, TimeProvider? time, Func<string, string> inConfiguration)
    {
        if (handshake <= TimeSpan.Zero)
        {
            throw new InvalidOperationException($"{owner}.HandshakeTimeout{inConfiguration("HandshakeTimeout")} must be positive (default 10 s).");
        }

        if (step <= TimeSpan.Zero)
        {
            throw new InvalidOperationException($"{owner}.HandshakeStepTimeout{inConfiguration("HandshakeStepTimeout")} must be positive (default 3 s).");
        }

        if (time is null)
        {
            throw new InvalidOperationException($"{owner}.TimeProvider must not be null (use TimeProvider.System).");
        }
    }
}
