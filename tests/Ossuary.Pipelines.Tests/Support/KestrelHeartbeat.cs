using Microsoft.Extensions.Logging.Testing;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Kestrel's own warning that says the machine is busy, not that a peer did anything.</summary>
internal static class KestrelHeartbeat
{
    /// <summary>
    /// "The heartbeat has been running for … which is longer than 1 s" (Kestrel's <c>HeartbeatSlow</c>):
    /// logged when the process was off the CPU for a second, as on a loaded CI machine. The tests that
    /// assert a server said nothing above Debug about hostile peers leave it out.
    /// </summary>
    public static bool RanLate(FakeLogRecord record) => record.Id.Name == "HeartbeatSlow";
}
