namespace Ossuary.Cli.Net;

/// <summary>How a netcat session ended, and what of the peer's was lost when it crossed our idle close.</summary>
/// <param name="End">How it ended.</param>
/// <param name="LateBytes">With <see cref="NetcatEnd.ClosedOverLateData"/>: the peer's bytes that arrived after our Disconnect and were not written.</param>
/// <param name="CloseUnseen">After our idle close: why the peer's close was not seen (time up, the connection failed), so that what it sent after is uncounted; null if it was seen.</param>
internal readonly record struct NetcatResult(NetcatEnd End, long LateBytes = 0, string? CloseUnseen = null)
{
    /// <summary>What was lost, for a message: "N bytes the peer sent before it saw our close were not written to stdout".</summary>
    public string DescribeLate(string peer) =>
        $"{peer} sent {LateBytes} bytes{(CloseUnseen is null ? "" : $" (or more: {CloseUnseen})")} while this side's close was on its way (--wait was over); "
        + "they arrived after it and were not written to stdout";

    /// <summary>For <see cref="NetcatEnd.ClosedUnconfirmed"/>: why nothing can be said of what the peer sent after our close.</summary>
    public string DescribeUnconfirmed(string peer) =>
        $"closed the connection once --wait was over, but {peer} did not close after it: {CloseUnseen}; "
        + "anything it sent meanwhile was not written to stdout, and whether it sent anything is not known";
}
