using Microsoft.Extensions.Logging.Testing;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Picks records out of a fake logger provider's collector.</summary>
internal static class LogRecords
{
    /// <summary>Event 24: a change of the options was refused (kept at Error until one passes).</summary>
    public const int OptionsReloadFailed = 24;

    /// <summary>Event 25: a change of the options was applied.</summary>
    public const int OptionsReloaded = 25;

    /// <summary>Event 27: the identity key file named could not be read; the key in force is kept and the rest of the change applied (Error).</summary>
    public const int IdentityKeyFileKept = 27;

    /// <summary>Ossuary's records (by category) with event id <paramref name="id"/>, as logged so far.</summary>
    public static List<FakeLogRecord> Records(FakeLoggerProvider logs, int id) =>
        [.. logs.Collector.GetSnapshot().Where(r => r.Category?.StartsWith("Ossuary", StringComparison.Ordinal) == true && r.Id.Id == id)];
}
