using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// The meter <c>Ossuary.Pipelines</c>: handshake duration and concurrency, and the traffic of
/// established connections. The per-frame counters carry no tags so that recording them allocates nothing.
/// A <see cref="MeterListener"/>'s measurement callback runs inside the instrument's Add or Record, so what
/// it throws (an exporter's bug) came out of the handshake and the frame loops: every handshake failed
/// with it, a completed one was reported failed, and a frame already opened was lost with its connection.
/// Each measurement is guarded: the measurement is dropped, and the first failure of these instruments
/// said at Error (event 30) with its cause, on the logger of the connection that met it.
/// </summary>
internal sealed class OssuaryMetrics
{
    public const string MeterName = "Ossuary.Pipelines";

    private static readonly Lazy<OssuaryMetrics> Shared = new(() => new OssuaryMetrics(new Meter(MeterName)));

    // One set of instruments per factory: plans are rebuilt on every options reload and per client connect.
    private static readonly ConditionalWeakTable<IMeterFactory, OssuaryMetrics> PerFactory = [];

    private readonly Histogram<double> _handshakeDuration;
    private readonly UpDownCounter<long> _activeHandshakes;
    private readonly Counter<long> _rejectedConnections;
    private int _listenerFailed;

    private OssuaryMetrics(Meter meter)
    {
        _handshakeDuration = meter.CreateHistogram<double>(
            "ossuary.handshake.duration", unit: "s", description: "Duration of Ossuary handshakes.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        _activeHandshakes = meter.CreateUpDownCounter<long>("ossuary.active_handshakes", unit: "{handshake}", description: "Ossuary handshakes under way.");
        _rejectedConnections = meter.CreateCounter<long>("ossuary.rejected_connections", unit: "{connection}",
            description: "Connections a server closed unheard because MaxPendingHandshakes handshakes were already under way.");
        BytesSent = meter.CreateCounter<long>("ossuary.bytes_sent", unit: "By", description: "Plaintext bytes sealed and sent (counted once the transport's flush took them).");
        BytesReceived = meter.CreateCounter<long>("ossuary.bytes_received", unit: "By", description: "Plaintext bytes received and opened.");
        FramesSent = meter.CreateCounter<long>("ossuary.frames_sent", unit: "{frame}", description: "EncryptedData packets sent (counted once the transport's flush took them).");
        FramesReceived = meter.CreateCounter<long>("ossuary.frames_received", unit: "{frame}", description: "EncryptedData packets received.");
    }

    private Counter<long> BytesSent { get; }

    private Counter<long> BytesReceived { get; }

    private Counter<long> FramesSent { get; }

    private Counter<long> FramesReceived { get; }

    public static OssuaryMetrics Create(IMeterFactory? factory) =>
        factory is null ? Shared.Value : PerFactory.GetValue(factory, static f => new OssuaryMetrics(f.Create(MeterName)));

    public void HandshakeStarted(ILogger logger)
    {
        try
        {
            _activeHandshakes.Add(1);
        }
        catch (Exception ex)
        {
            ListenerFailed(logger, ex);
        }
    }

    /// <summary>A connection a server closed unheard, its <c>MaxPendingHandshakes</c> reached.</summary>
    public void ConnectionRejected(ILogger logger)
    {
        try
        {
            _rejectedConnections.Add(1);
        }
        catch (Exception ex)
        {
            ListenerFailed(logger, ex);
        }
    }

    public void HandshakeEnded(OssuaryRole role, TimeSpan elapsed, OssuaryErrorReason? error, ILogger logger) =>
        RecordHandshake(role, elapsed, error is null ? "success" : "failure", error, logger);

    /// <summary>One EncryptedData packet received and opened, <paramref name="bytes"/> of plaintext.</summary>
    public void FrameReceived(long bytes, ILogger logger)
    {
        try
        {
            FramesReceived.Add(1);
            BytesReceived.Add(bytes);
        }
        catch (Exception ex)
        {
            ListenerFailed(logger, ex);
        }
    }

    /// <summary><paramref name="frames"/> EncryptedData packets, <paramref name="bytes"/> of plaintext, taken by the transport's flush.</summary>
    public void FramesFlushed(long frames, long bytes, ILogger logger)
    {
        try
        {
            FramesSent.Add(frames);
            BytesSent.Add(bytes);
        }
        catch (Exception ex)
        {
            ListenerFailed(logger, ex);
        }
    }

    /// <summary>
    /// A handshake that failed before it began (a server's <c>IdentitySelector</c> failed): counted as the
    /// failed handshake it is, in and out of <c>ossuary.active_handshakes</c> at once.
    /// </summary>
    public void HandshakeFailedBeforeItBegan(OssuaryRole role, TimeSpan elapsed, OssuaryErrorReason error, ILogger logger)
    {
        HandshakeStarted(logger);
        HandshakeEnded(role, elapsed, error, logger);
    }

    /// <summary>A handshake its caller cancelled (its token): neither side failed, so no <c>error.type</c>.</summary>
    public void HandshakeCancelled(OssuaryRole role, TimeSpan elapsed, ILogger logger) => RecordHandshake(role, elapsed, "cancelled", null, logger);

    private void RecordHandshake(OssuaryRole role, TimeSpan elapsed, string outcome, OssuaryErrorReason? error, ILogger logger)
    {
        try
        {
            _activeHandshakes.Add(-1);
        }
        catch (Exception ex)
        {
            ListenerFailed(logger, ex);
        }

        var tags = new TagList
        {
            { "ossuary.role", RoleTag(role) },
            { "ossuary.outcome", outcome },
        };
        if (error is not null)
        {
            tags.Add("error.type", error.Value.ToString());
        }

        try
        {
            _handshakeDuration.Record(elapsed.TotalSeconds, tags);
        }
        catch (Exception ex)
        {
            ListenerFailed(logger, ex);
        }
    }

    /// <summary>Says the first failure of a listener of these instruments; later ones would say it once a frame.</summary>
    private void ListenerFailed(ILogger logger, Exception exception)
    {
        if (Interlocked.Exchange(ref _listenerFailed, 1) == 0)
        {
            OssuaryLog.MeterListenerFailed(logger, exception);
        }
    }

    private static string RoleTag(OssuaryRole role) => role == OssuaryRole.Client ? "client" : "server";
}
