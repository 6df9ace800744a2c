using Microsoft.Extensions.Logging.Testing;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// <c>query</c> names the number a reading stored under a reused sequence number was sent with: it
/// printed <c>seq=-</c>, as for a device that does not number its readings, and the operator could not
/// tell the device's second life from a device without numbers.
/// </summary>
public sealed class TelemetryReusedSequenceQueryTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-telemetry-reused-query-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task QueryPrintsTheNumberAReadingReusedAndSaysItWasReused()
    {
        string device = new string('a', 64);
        string database = Path.Combine(_directory, "telemetry.db");
        await using (SqliteReadingStore store = SqliteReadingStore.Open(database, new FakeLogger()))
        {
            await store.WriteAsync([new StoredReading(device, 7, "temp", 1, 1_700_000_000_000)], CancellationToken.None);
            await store.WriteAsync([new StoredReading(device, 7, "temp", 2, 1_700_000_001_000), new StoredReading(device, null, "temp", 3, 1_700_000_002_000)], CancellationToken.None);
            Assert.Equal(1, store.Reused);
        }

        (int code, string stdout, string stderr) = await TelemetryCommandLineTests.RunAsync(_directory, "query", "--db", database, "--device", device);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("seq=7  temp=1", lines[0], StringComparison.Ordinal);
        Assert.Contains("seq=7(reused)  temp=2", lines[1], StringComparison.Ordinal);
        Assert.Contains("seq=-  temp=3", lines[2], StringComparison.Ordinal);
    }
}
