using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace Ossuary.Pipelines.Transport;

/// <summary>Settings of an Ossuary client; validated and copied when the handshake starts.</summary>
public sealed class OssuaryClientOptions
{
    /// <summary>Default bound on connecting the socket (every address of a host name included).</summary>
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The client's identity; null connects anonymously (accepted only by unauthenticated servers). Not disposed by the library.</summary>
    public OssuaryIdentity? Identity { get; set; }

    /// <summary>
    /// A secret key file (<see cref="Trust.OssuarySecretKeyFile"/>) to read the identity from, in place
    /// of <see cref="Identity"/>; for configuration (<c>Ossuary:Client:IdentityKeyFile</c>). A configuration reload reads only a regular file: a named pipe, which start-up waits on until something writes to it, is refused on a reload before it is opened (the key in force kept, said at Error), as its open would wait for ever under what the connection factory's disposal waits for.
    /// A relative path is resolved against the process's current directory, not the host's content root (as Kestrel's certificate paths are): a service started from another folder reads another file, or none; give an absolute path, or one built from <c>IHostEnvironment.ContentRootPath</c>.
    /// </summary>
    public string? IdentityKeyFile { get; set; }

    /// <summary>
    /// Server keys the client trusts without asking. <see cref="OssuaryPublicKey.Anonymous"/> and the
    /// all-zero key are refused when the options are validated: no server can prove them. Every server
    /// proves a key, an unauthenticated one too, so options with no key here and neither
    /// <see cref="TrustServer"/> nor <see cref="TrustServerAtEndPoint"/> are refused as well: they would refuse every server.
    /// </summary>
    public ICollection<OssuaryPublicKey> TrustedServerKeys { get; } = new List<OssuaryPublicKey>();

    /// <summary>
    /// Asked when the server proves a key that is not in <see cref="TrustedServerKeys"/>; true trusts it
    /// for this connection (trust on first use: record it, e.g. in a known-hosts file). Without a
    /// callback an unknown server is refused with <see cref="OssuaryErrorReason.UntrustedServer"/>.
    /// To know which server is asking (one options object for many hosts), use
    /// <see cref="TrustServerAtEndPoint"/> instead; set at most one of the two.
    /// </summary>
    public Func<OssuaryPublicKey, CancellationToken, ValueTask<bool>>? TrustServer { get; set; }

    /// <summary>
    /// <see cref="TrustServer"/> with the endpoint it decides for (<see cref="OssuaryServerTrustContext.EndPoint"/>,
    /// as the caller named it, e.g. a <see cref="System.Net.DnsEndPoint"/>), so that one options object can
    /// check a known-hosts file for many hosts.
    /// </summary>
    public Func<OssuaryServerTrustContext, CancellationToken, ValueTask<bool>>? TrustServerAtEndPoint { get; set; }

    /// <summary>
    /// Bound on connecting the socket in <c>OssuaryClient</c> and <c>OssuaryConnectionFactory</c>, a host name's
    /// lookup and every address of it included (a timeout during the lookup says that the name had not resolved): each address but the last is given up on after its share of the
    /// time left (divided among the addresses left, at least 2 s), so that one that never answers (a
    /// black-holed IPv6 route) leaves time for the next. Default 30 s; <see cref="Timeout.InfiniteTimeSpan"/>
    /// waits as long as the OS does, for each address.
    /// </summary>
    public TimeSpan ConnectTimeout { get; set; } = DefaultConnectTimeout;

    /// <summary>Bound on the whole handshake, re-handshakes included. Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = OssuaryServerOptions.DefaultHandshakeTimeout;

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
    /// keep-alive). Applies where the library has the socket: <c>OssuaryClient</c> and <c>OssuaryConnectionFactory</c>,
    /// whose connect fails with the system's <see cref="System.Net.Sockets.SocketException"/> where the socket refuses
    /// the options; on a system that has none of them (<see cref="PlatformNotSupportedException"/>) the connection goes on
    /// without, logged (event 26, at Error, limited per cause), as a server's does (<see cref="Timeout.InfiniteTimeSpan"/> says nothing).
    /// </summary>
    public TimeSpan TcpKeepAlive { get; set; } = Integrations.TcpKeepAlive.Default;

    /// <summary>Sets <see cref="TcpKeepAlive"/> on a connected socket; a test's seam, to refuse as a system without the options does.</summary>
    internal Action<System.Net.Sockets.Socket, TimeSpan> KeepAliveSetter { get; set; } = Integrations.TcpKeepAlive.Apply;

    /// <summary>The clock for <see cref="HandshakeTimeout"/> and <see cref="HandshakeStepTimeout"/>; <see cref="ConnectTimeout"/> is the socket connect's, on the system clock, as is the retry of a refused change of the options.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Where the client's logs go (category <c>Ossuary.Pipelines.Client</c>); null: nowhere (the DI registration sets the host's).</summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>
    /// Creates the <c>Ossuary.Pipelines</c> meter; null: a process-wide meter (the DI registration sets the host's).
    /// In a host, set the host's <c>IMeterFactory</c> here: the process-wide meter has the same name and
    /// instruments as the host's (see <see cref="OssuaryTelemetry.MeterName"/>).
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
    internal List<string> ConfigurationProblems { get; } = [];

    /// <summary>What a setting's configuration key starts with when these options are bound from configuration, null otherwise.</summary>
    internal string? ConfigurationPrefix { get; set; }

    private string InConfiguration(string setting) =>
        ConfigurationPrefix is null ? "" : $" ({ConfigurationPrefix}{setting} in configuration)";

    /// <summary>How a message names <paramref name="setting"/>: with its configuration key when bound from configuration.</summary>
    internal string Named(string setting) => $"{nameof(OssuaryClientOptions)}.{setting}{InConfiguration(setting)}";

    /// <summary>Throws with a message that says what to fix.</summary>
    internal void Validate()
    {
        if (ConfigurationProblems.Count > 0)
        {
            throw new InvalidOperationException(string.Join(" ", ConfigurationProblems));
        }

        if (TrustServer is not null && TrustServerAtEndPoint is not null)
        {
            throw new InvalidOperationException("Set OssuaryClientOptions.TrustServer or TrustServerAtEndPoint, not both: only one can decide.");
        }

        if (Identity is not null && IdentityKeyFile is not null)
        {
            throw new InvalidOperationException("Set OssuaryClientOptions.Identity or IdentityKeyFile, not both.");
        }

        Configuration.KeyFilePath.Require(IdentityKeyFile, $"OssuaryClientOptions.{nameof(IdentityKeyFile)}", InConfiguration(nameof(IdentityKeyFile)));

        if (TrustedServerKeys.Any(key => key is null))
        {
            throw new InvalidOperationException("OssuaryClientOptions.TrustedServerKeys holds a null key.");
        }

        if (TrustedServerKeys.FirstOrDefault(key => key.IsUnprovable) is { } unprovable)
        {
            throw new InvalidOperationException(
                $"OssuaryClientOptions.TrustedServerKeys holds {unprovable}, {(unprovable.IsAnonymous ? "the anonymous key" : "all zeros")}: " +
                "no server can prove it, so it trusts nobody. Remove it and list the server's own public key.");
        }

        if (ConnectTimeout <= TimeSpan.Zero && ConnectTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new InvalidOperationException($"{Named(nameof(ConnectTimeout))} must be positive or Timeout.InfiniteTimeSpan (default 30 s).");
        }

        OssuaryServerOptions.ValidateTimeouts(nameof(OssuaryClientOptions), HandshakeTimeout, HandshakeStepTimeout, TimeProvider, InConfiguration);
        Integrations.TcpKeepAlive.Validate(TcpKeepAlive, nameof(OssuaryClientOptions), InConfiguration(nameof(TcpKeepAlive)));

        if (TrustedServerKeys.Count == 0 && TrustServer is null && TrustServerAtEndPoint is null)
        {
            // Every server proves a key (an unauthenticated one too), so such a client refuses them all,
            // one UntrustedServer at a time: a misconfiguration to report now, not on each connect.
            throw new InvalidOperationException(
                "OssuaryClientOptions trusts no server: add the server's public key to TrustedServerKeys" +
                InConfiguration($"{nameof(TrustedServerKeys)}:0") + ", or decide with TrustServer or TrustServerAtEndPoint (e.g. a known-hosts file).");
        }
    }
}
