using Microsoft.Extensions.Logging.Testing;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Picks records out of a fake logger provider's collector.</summary>
internal static class LogRecords
{
    /// <summary>Ossuary's records (by category) with event id <paramref name="id"/>, as logged so far.</summary>
    public static List<FakeLogRecord> Records(FakeLoggerProvider logs, int id) =>
        [.. logs.Collector.GetSnapshot().Where(r => r.Category?.StartsWith("Ossuary", StringComparison.Ordinal) == true && r.Id.Id == id)];
}
