namespace Ossuary.Cli.Net;

/// <summary>How a netcat session (<c>connect</c>, <c>listen</c> without <c>--echo</c>) ended.</summary>
internal enum NetcatEnd
{
    /// <summary>The peer closed after the end of our stdin: everything both ways was delivered.</summary>
    PeerClosed,

    /// <summary>
    /// The peer closed while our stdin, a pipe or file, had not ended: what it still held was not
    /// sent (for a <c>listen</c> server that goes on, it goes to the next connection).
    /// </summary>
    PeerClosedBeforeEndOfInput,

    /// <summary>We closed: our stdin had ended and the peer sent nothing for <c>--wait</c> after our last byte.</summary>
    ClosedWhenIdle,
}
