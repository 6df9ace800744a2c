namespace Ossuary.Cli.Net;

/// <summary>How a netcat session ended, and what of the peer's was lost when it crossed our idle close.</summary>
/// <param name="End">How it ended.</param>
/// <param name="LateBytes">With <see cref="NetcatEnd.ClosedOverLateData"/>: the peer's bytes that arrived after our Disconnect and were not written.</param>
/// <param name="PeerCloseSeen">With <see cref="NetcatEnd.ClosedOverLateData"/>: false if the peer's close was not seen (time up, reset), so more may have been lost.</param>
internal readonly record struct NetcatResult(NetcatEnd End, long LateBytes = 0, bool PeerCloseSeen = true)
{
    /// <summary>What was lost, for a message: "N bytes the peer sent before it saw our close were not written to stdout".</summary>
    public string DescribeLate(string peer) =>
        $"{peer} sent {LateBytes} bytes{(PeerCloseSeen ? "" : " (or more)")} while this side's close was on its way (--wait was over); "
        + "they arrived after it and were not written to stdout";
}
