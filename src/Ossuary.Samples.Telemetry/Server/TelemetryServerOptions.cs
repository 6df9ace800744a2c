using System.Net;
using Ossuary.Pipelines;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>Where the telemetry server listens and whom it admits.</summary>
public sealed class TelemetryServerOptions
{
    /// <summary>The address to listen on. Default: loopback.</summary>
    public IPAddress Address { get; init; } = IPAddress.Loopback;

    /// <summary>The TCP port; 0 picks a free one (see <see cref="TelemetryServer.EndPoint"/>).</summary>
    public int Port { get; init; }

    /// <summary>The server's identity, which devices pin. Not disposed by the server.</summary>
    public required OssuaryIdentity Identity { get; init; }

    /// <summary>The devices admitted (an authorized-keys file's content).</summary>
    public required IReadOnlyCollection<OssuaryPublicKey> AuthorizedDevices { get; init; }

    /// <summary>
    /// The SQLite file readings are stored in (created if missing; it survives restarts). Ignored when
    /// <see cref="Store"/> or <see cref="JetStream"/> is set. Default: <c>telemetry.db</c> in the working directory.
    /// </summary>
    public string DatabasePath { get; init; } = "telemetry.db";

    /// <summary>
    /// Publish readings to NATS JetStream instead of storing them here (an ingestion node of several; a
    /// <see cref="JetStream.JetStreamStoreConsumer"/> stores them). Null (the default): the SQLite file.
    /// </summary>
    public JetStream.JetStreamOptions? JetStream { get; init; }

    /// <summary>Another store instead of the SQLite file (tests use a deliberately slow one). Not disposed by the server.</summary>
    public Storage.IReadingStore? Store { get; init; }

    /// <summary>
    /// Readings held between the connections and the store writer at most. When it is full, connections
    /// stop reading and devices are slowed by flow control. Default 65,536 (a few MB).
    /// </summary>
    public int QueueCapacity { get; init; } = 65_536;

    /// <summary>
    /// Device connections open at once at most (Kestrel's <c>MaxConcurrentConnections</c> on the device
    /// port); one more is closed as it is accepted, before its handshake costs anything, and Kestrel logs
    /// it at Warning. Default 20,000: twice the 10,000 devices the sample is measured with, so that a
    /// reconnect storm's new connections fit while the old ones close. At least 1.
    /// </summary>
    public int MaxConnections { get; init; } = DefaultMaxConnections;

    /// <summary>The default of <see cref="MaxConnections"/>.</summary>
    public const int DefaultMaxConnections = 20_000;

    /// <summary>Readings written to the store per transaction at most. Default 4,096.</summary>
    public int BatchSize { get; init; } = 4_096;

    /// <summary>
    /// Serve Prometheus metrics over plain HTTP at <c>http://{Address}:{MetricsPort}/metrics</c>: this
    /// sample's meter and the library's <c>Ossuary.Pipelines</c> meter. 0 picks a free port
    /// (<see cref="TelemetryServer.MetricsEndPoint"/>); null (the default) serves none.
    /// </summary>
    public int? MetricsPort { get; init; }

    /// <summary>An extra log destination (tests capture the log with it). Not disposed by the server.</summary>
    public Microsoft.Extensions.Logging.ILoggerProvider? LoggerProvider { get; init; }

    /// <summary>
    /// Minimum level of the server's console log. Default: warnings. The JetStream publisher's log goes
    /// down to Information whatever this says: its Information lines say that a NATS outage or a full
    /// stream it warned of is over.
    /// </summary>
    public Microsoft.Extensions.Logging.LogLevel LogLevel { get; init; } = Microsoft.Extensions.Logging.LogLevel.Warning;

    /// <summary>
    /// How long stopping waits for open connections to end before Kestrel aborts them; null (the
    /// default) keeps the host's 30 s. Internal: for tests of what happens past that wait, which
    /// need not spend 30 s getting there.
    /// </summary>
    internal TimeSpan? ShutdownTimeout { get; init; }
}
