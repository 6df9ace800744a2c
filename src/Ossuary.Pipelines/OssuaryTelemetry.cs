namespace Ossuary.Pipelines;

/// <summary>
/// Names to subscribe to: <c>AddMeter(OssuaryTelemetry.MeterName)</c> and
/// <c>AddSource(OssuaryTelemetry.ActivitySourceName)</c> in OpenTelemetry, or a <c>MeterListener</c> /
/// <c>ActivityListener</c>. Both sides report: handshake spans and durations carry <c>ossuary.role</c>.
/// </summary>
public static class OssuaryTelemetry
{
    /// <summary>
    /// The meter: <c>ossuary.handshake.duration</c>, <c>ossuary.active_handshakes</c>,
    /// <c>ossuary.bytes_sent</c>/<c>_received</c>, <c>ossuary.frames_sent</c>/<c>_received</c>.
    /// </summary>
    /// <remarks>
    /// A process may hold more than one meter of this name, as it does for <c>System.Net.Http</c>
    /// (a static <c>HttpClient</c> and <c>IHttpClientFactory</c>'s): each host's, made by its
    /// <c>IMeterFactory</c> (<c>UseOssuary</c>, <c>AddOssuaryClient</c>, options whose <c>MeterFactory</c>
    /// is set), and one process-wide meter for connections whose options name no factory
    /// (<c>OssuaryClient.ConnectAsync</c>, <c>OssuaryStream</c>, <c>OssuaryDuplexPipe</c>). They have the same
    /// instruments and tags. OpenTelemetry adds their measurements into one series per instrument and
    /// tag set, the process's total; a <c>MeterListener</c> sees each instrument once per meter
    /// (<c>Instrument.Meter.Scope</c> is the factory, null for the process-wide meter). To count a
    /// client in a host on the host's meter, set <c>OssuaryClientOptions.MeterFactory</c> to the host's
    /// <c>IMeterFactory</c>. A host's meter ends when the host is disposed; OpenTelemetry (1.20) then
    /// stops exporting the series it shared with the other meters, so a process that stops a host and
    /// goes on connecting should give its remaining connections a meter factory that lives as long.
    /// </remarks>
    public const string MeterName = "Ossuary.Pipelines";

    /// <summary>
    /// The activity source: one <c>ossuary.handshake</c> span per handshake (kind Client or Server) with
    /// tags <c>ossuary.role</c>, <c>ossuary.outcome</c> (<c>success</c>/<c>failure</c>, or <c>cancelled</c>
    /// when the caller's token ended it, status left unset),
    /// <c>ossuary.remote_key.fingerprint</c> (<c>SHA256:</c> and the unpadded base64 of the key's
    /// SHA-256, as OpenSSH prints fingerprints) and, on failure, <c>error.type</c> (the
    /// <see cref="OssuaryErrorReason"/>) with status Error. The span's duration is the handshake's.
    /// </summary>
    public const string ActivitySourceName = "Ossuary.Pipelines";
}
