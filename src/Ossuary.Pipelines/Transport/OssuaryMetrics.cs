using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// The meter <c>Ossuary.Pipelines</c>: handshake duration and concurrency, and the traffic of
/// established connections. The per-frame counters carry no tags so that recording them allocates nothing.
/// </summary>
internal sealed class OssuaryMetrics
{
    public const string MeterName = "Ossuary.Pipelines";

    private static readonly Lazy<OssuaryMetrics> Shared = new(() => new OssuaryMetrics(new Meter(MeterName)));

    // One set of instruments per factory: plans are rebuilt on every options reload and per client connect.
    private static readonly ConditionalWeakTable<IMeterFactory, OssuaryMetrics> PerFactory = [];

    private readonly Histogram<double> _handshakeDuration;
    private readonly UpDownCounter<long> _activeHandshakes;

    private OssuaryMetrics(Meter meter)
    {
        _handshakeDuration = meter.CreateHistogram<double>(
            "ossuary.handshake.duration", unit: "s", description: "Duration of Ossuary handshakes.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        _activeHandshakes = meter.CreateUpDownCounter<long>("ossuary.active_handshakes", unit: "{handshake}", description: "Ossuary handshakes under way.");
        BytesSent = meter.CreateCounter<long>("ossuary.bytes_sent", unit: "By", description: "Plaintext bytes sealed and sent (counted once the transport's flush took them).");
        BytesReceived = meter.CreateCounter<long>("ossuary.bytes_received", unit: "By", description: "Plaintext bytes received and opened.");
        FramesSent = meter.CreateCounter<long>("ossuary.frames_sent", unit: "{frame}", description: "EncryptedData packets sent (counted once the transport's flush took them).");
        FramesReceived = meter.CreateCounter<long>("ossuary.frames_received", unit: "{frame}", description: "EncryptedData packets received.");
    }

    public Counter<long> BytesSent { get; }

    public Counter<long> BytesReceived { get; }

    public Counter<long> FramesSent { get; }

    public Counter<long> FramesReceived { get; }

    public static OssuaryMetrics Create(IMeterFactory? factory) =>
        factory is null ? Shared.Value : PerFactory.GetValue(factory, static f => new OssuaryMetrics(f.Create(MeterName)));

    public void HandshakeStarted() => _activeHandshakes.Add(1);

    public void HandshakeEnded(OssuaryRole role, TimeSpan elapsed, OssuaryErrorReason? error) =>
        RecordHandshake(role, elapsed, error is null ? "success" : "failure", error);

    /// <summary>
    /// A handshake that failed before it began (a server's <c>IdentitySelector</c> failed): counted as the
    /// failed handshake it is, in and out of <c>ossuary.active_handshakes</c> at once.
    /// </summary>
    public void HandshakeFailedBeforeItBegan(OssuaryRole role, TimeSpan elapsed, OssuaryErrorReason error)
    {
        HandshakeStarted();
        HandshakeEnded(role, elapsed, error);
    }

    /// <summary>A handshake its caller cancelled (its token): neither side failed, so no <c>error.type</c>.</summary>
    public void HandshakeCancelled(OssuaryRole role, TimeSpan elapsed) => RecordHandshake(role, elapsed, "cancelled", null);

    private void RecordHandshake(OssuaryRole role, TimeSpan elapsed, string outcome, OssuaryErrorReason? error)
    {
        _activeHandshakes.Add(-1);
        var tags = new TagList
        {
            { "ossuary.role", RoleTag(role) },
            { "ossuary.outcome", outcome },
        };
        if (error is not null)
        {
            tags.Add("error.type", error.Value.ToString());
        }

        _handshakeDuration.Record(elapsed.TotalSeconds, tags);
    }

    private static string RoleTag(OssuaryRole role) => role == OssuaryRole.Client ? "client" : "server";
}
