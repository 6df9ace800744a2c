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
