namespace Ossuary.Pipelines.Transport;

/// <summary>
/// A transport that can end its own pending read without an exception, which disposal prefers to
/// <see cref="System.IO.Pipelines.PipeReader.CancelPendingRead"/>: cancelling a socket stream's
/// read throws (and catches) an <see cref="OperationCanceledException"/> inside the socket layer,
/// which a profile of short client connections found to be about 2% of their CPU time.
/// </summary>
internal interface IReadStoppingTransport
{
    /// <summary>
    /// Makes the input's pending read (and any later one) end as if the peer had closed; false if it cannot.
    /// With a positive <paramref name="lingerFor"/> (our Disconnect was sent and nothing failed), a
    /// socket first sends its end and gives the peer up to that long to close its own: the read ends
    /// at the peer's close or then (see <c>SocketDuplexPipe</c>, <c>StreamDuplexPipe</c>). A peer that resets the connection
    /// during that wait is reported to <paramref name="telemetry"/>, the connection's, and one still sending at its end
    /// as not having closed within <paramref name="closeWait"/>, the connection's whole wait (of which this is what is left).
    /// </summary>
    bool TryStopReading(TimeSpan lingerFor, TimeSpan closeWait, ConnectionTelemetry telemetry);

    /// <summary>
    /// After a server's Disconnect (error) that ended the handshake of a client that counts itself
    /// established (a refusal): over a socket whose owner closes it next, waits for the client to close
    /// its end, at most <paramref name="closeWait"/>, as <c>UseOssuary</c> does (see <c>StreamDuplexPipe.LingerAfterRefusalAsync</c>); else returns at once.
    /// </summary>
    Task LingerAfterRefusalAsync(TimeSpan closeWait, ConnectionTelemetry telemetry);
}
