using Ossuary.Pipelines.Loopback.Measurements;
using Ossuary.Pipelines.Loopback.Targets;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// <c>ossuary bench</c>'s timed loops on a loaded machine: a loop whose thread starts after its time
/// is up (0.15 s with --quick) still measures once. A round with nothing measured was a rate of 0
/// and a cost of Infinity, which the JSON report cannot hold: <c>ossuary bench --json</c> failed
/// with "unexpected error" (seen in CliBenchTests on a 2-core machine at load 14).
/// </summary>
public sealed class BenchLoopTests
{
    [Fact]
    public void ACryptoBoundLoopThatStartsAfterItsTimeStillMeasuresAHandshake()
    {
        using var keys = new OssuaryKeys();

        // No time at all: what a thread that started late sees.
        CryptoBoundMeasurement.Result result = CryptoBoundMeasurement.Run(keys, threads: 1, seconds: 0);

        Assert.True(result.PerSecond > 0 && double.IsFinite(result.CpuMicroseconds), result.ToString());
    }

    [Fact]
    public void ACipherLoopThatStartsAfterItsTimeStillMeasuresARecord()
    {
        using var keys = new OssuaryKeys();

        double cost = CipherMeasurement.CpuMicrosecondsPerMegabyte(keys, seconds: 0);

        Assert.True(double.IsFinite(cost), $"{cost} us per MB");
    }
}
