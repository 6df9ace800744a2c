namespace Ossuary.Pipelines.Transport;

/// <summary>
/// A client's failure when the server ended the connection before a byte of its handshake had come. The wire carries
/// no reason, and a cut handshake alone sent the operator looking at the network: a <c>UseOssuary</c> server at its
/// <c>MaxPendingHandshakes</c> closes a connection unheard, and so does a listener that is not an Ossuary server.
/// </summary>
internal static class SilentServer
{
    private const string MayBe = "it may be at its limit of handshakes in progress (MaxPendingHandshakes), or not an Ossuary server.";

    /// <summary>The server's end of the connection came first (EOF).</summary>
    public static OssuaryException Closed() =>
        new(OssuaryErrorReason.Truncated, $"The server closed the connection before its first handshake packet: {MayBe}");

    /// <summary>The server's socket reset the connection (closed with our ClientHandshake unread).</summary>
    public static OssuaryException Reset(IOException cause) =>
        new(OssuaryErrorReason.ConnectionFailed, $"The server reset the connection before its first handshake packet ({cause.Message}): {MayBe}", cause);
}
