using Ossuary.Samples.Telemetry.Server;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>The telemetry sample's per-device count of missing and repeated sequence numbers.</summary>
public sealed class SequenceWindowTests
{
    [Fact]
    public void InOrderNumbersFromAnyStartHaveNoGapsNorRepeats()
    {
        var window = new SequenceWindow();
        for (long seq = 1000; seq < 4000; seq++)
        {
            window.Record(seq);
        }

        Assert.Equal(0, window.Gaps);
        Assert.Equal(0, window.Repeats);
    }

    [Fact]
    public void TwoConnectionsInterleavingFillEachOthersGaps()
    {
        // A device reconnects while its old connection is still being drained: evens on one, odds on
        // the other, each connection's readings in order but the two interleaved in blocks.
        long[] evens = [.. Enumerable.Range(0, 500).Select(i => 2L * i)];
        long[] odds = [.. Enumerable.Range(0, 500).Select(i => (2L * i) + 1)];
        var window = new SequenceWindow();
        for (int block = 0; block < 500; block += 50)
        {
            foreach (long seq in evens.Skip(block).Take(50))
            {
                window.Record(seq);
            }

            foreach (long seq in odds.Skip(block).Take(50))
            {
                window.Record(seq);
            }
        }

        Assert.Equal(0, window.Gaps);
        Assert.Equal(0, window.Repeats);
    }

    [Fact]
    public void AResentNumberIsARepeatWhereverItFallsInTheWindow()
    {
        var window = new SequenceWindow();
        for (long seq = 0; seq < 2000; seq++)
        {
            window.Record(seq);
        }

        foreach (long seq in new long[] { 1999, 1998, 1935, 1936, 1937, 1000 + 63, 1000 + 64, 1999 - SequenceWindow.Size + 1 })
        {
            window.Record(seq);
        }

        Assert.Equal(0, window.Gaps);
        Assert.Equal(8, window.Repeats);
    }

    [Fact]
    public void ALongJumpCountsEveryNumberSkippedAndLateOnesWithinTheWindowFillThem()
    {
        var window = new SequenceWindow();
        window.Record(10);
        window.Record(10 + 5000); // 4,999 skipped, more than the window holds

        Assert.Equal(4999, window.Gaps);

        window.Record(5000); // within the window: fills its gap
        window.Record(4000); // 1,010 behind the highest: still within 1,024
        window.Record(11); // far older than the window: cannot be told from a resend

        Assert.Equal(4997, window.Gaps);
        Assert.Equal(1, window.Repeats);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(127)]
    [InlineData(128)]
    [InlineData(1023)]
    [InlineData(1024)]
    public void EveryNumberSkippedByAJumpIsRememberedAsMissingAcrossWordBoundaries(int jump)
    {
        var window = new SequenceWindow();
        window.Record(100);
        window.Record(100 + jump);
        Assert.Equal(jump - 1, window.Gaps);

        // Each skipped number arrives late once, then again: a gap filled, then a repeat.
        for (long seq = 101; seq < 100 + jump; seq++)
        {
            window.Record(seq);
            window.Record(seq);
        }

        window.Record(100); // the first number, still remembered when within the window
        Assert.Equal(0, window.Gaps);
        Assert.Equal(jump, window.Repeats);
    }

    [Fact]
    public void ANumberBelowTheFirstMovesTheStartAndCountsWhatLiesBetween()
    {
        var window = new SequenceWindow();
        window.Record(50);
        window.Record(51);
        window.Record(45); // 46-49 now lie inside the device's range, not received

        Assert.Equal(4, window.Gaps);
        Assert.Equal(0, window.Repeats);

        window.Record(47);
        window.Record(45);
        Assert.Equal(3, window.Gaps);
        Assert.Equal(1, window.Repeats);
    }
}
