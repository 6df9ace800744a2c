namespace Ossuary.Cli.Net;

/// <summary>How a netcat session (<c>connect</c>, <c>listen</c> without <c>--echo</c>) ended.</summary>
internal enum NetcatEnd
{
    /// <summary>
    /// The peer closed after the end of our stdin. Everything it sent reached our stdout; what we sent was
    /// handed to the connection, but only the peer's own answer proves its application read it all (a
    /// peer that closes without reading loses the rest, as with netcat; <c>send</c> checks length and hash).
    /// Handed over is not sent: a peer that stopped reading and then closed leaves the last bytes queued
    /// here, which the command finds once the connection is disposed (<see cref="UnsentStdin"/>).
    /// </summary>
    PeerClosed,

    /// <summary>
    /// The peer closed while our stdin, a pipe or file, had not ended: what it still held was not
    /// sent (for a <c>listen</c> server that goes on, it goes to the next connection).
    /// </summary>
    PeerClosedBeforeEndOfInput,

    /// <summary>We closed: our stdin had ended, the peer had answered our last bytes, then nothing moved for <c>--wait</c>.</summary>
    ClosedWhenIdle,

    /// <summary>
    /// We closed: our stdin had ended and the peer sent nothing after our last byte for <c>--wait</c>.
    /// It may still have been about to answer, so this is said on stderr.
    /// </summary>
    ClosedUnanswered,

    /// <summary>
    /// We closed when idle, but the peer had sent more while our Disconnect was on its way: the closed
    /// session discarded it, so stdout lacks the end of what the peer sent (<see cref="NetcatResult.LateBytes"/>).
    /// </summary>
    ClosedOverLateData,

    /// <summary>
    /// We closed when idle, and the peer's close did not follow (the drain's time was up, the connection failed):
    /// what it sent after our Disconnect was discarded uncounted, so no clean end can be claimed (<see cref="NetcatResult.CloseUnseen"/>).
    /// </summary>
    ClosedUnconfirmed,
}
