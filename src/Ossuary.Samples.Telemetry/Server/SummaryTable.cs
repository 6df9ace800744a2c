using System.Globalization;
using System.Text;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>The server's periodic report: a header line, then one row per device.</summary>
public static class SummaryTable
{
    /// <summary>Formats <paramref name="devices"/>; <paramref name="throughput"/> is readings/s since the previous report.</summary>
    /// <param name="devices">The registry's snapshot.</param>
    /// <param name="throughput">All devices' readings per second since the previous report.</param>
    /// <param name="maxRows">Rows to print at most (the busiest devices first when it cuts); null prints all, ordered by key.</param>
    public static string Format(IReadOnlyList<DeviceSnapshot> devices, double throughput, int? maxRows = null)
    {
        var text = new StringBuilder();
        CultureInfo invariant = CultureInfo.InvariantCulture;
        long readings = devices.Sum(device => device.Readings);
        long rejected = devices.Sum(device => device.Rejected);
        int connected = devices.Count(device => device.Connections > 0);
        text.AppendLine(invariant, $"{DateTime.Now:HH:mm:ss}  devices {devices.Count} ({connected} connected)  readings {readings}  rejected {rejected}  {throughput:F1} readings/s");
        text.AppendLine(invariant, $"{"device",-12}  {"readings",10}  {"rate/s",8}  last");

        IEnumerable<DeviceSnapshot> rows = devices;
        if (maxRows is int max && devices.Count > max)
        {
            rows = devices.OrderByDescending(device => device.Readings).Take(max);
        }

        foreach (DeviceSnapshot device in rows)
        {
            string last = device.LastSensor is null ? "-" : $"{PrintableText.Escape(device.LastSensor)}={device.LastValue.ToString("0.###", invariant)}";
            string online = device.Connections > 0 ? "" : "  (offline)";
            text.AppendLine(invariant, $"{device.ShortKey,-12}  {device.Readings,10}  {device.Rate,8:F1}  {last}{online}");
        }

        if (maxRows is int shown && devices.Count > shown)
        {
            text.AppendLine(invariant, $"... and {devices.Count - shown} more (--rows to show more)");
        }

        return text.ToString();
    }
}
