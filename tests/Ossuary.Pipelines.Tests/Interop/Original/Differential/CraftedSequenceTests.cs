using System.Diagnostics;
using Xunit.Abstractions;

namespace Ossuary.Pipelines.Tests.Interop.Original.Differential;

/// <summary>
/// The hand-made adversarial sequences of <see cref="CraftedSequences"/>, each through the original
/// (tests/differential/original_pair.c) and through our sessions with the same random draws, every
/// packet and call compared as for the generated scenarios: a difference must be one documented in
/// <see cref="KnownDifferences"/>, checked by its rule.
/// </summary>
public sealed class CraftedSequenceTests(ITestOutputHelper output)
{
    [Fact]
    public void CraftedSequencesMatchTheOriginal()
    {
        var run = new DifferentialRun();
        var clock = Stopwatch.StartNew();
        run.RunAll(CraftedSequences.All());

        string summary = $"crafted sequences: {run.Summary()} ({clock.Elapsed.TotalSeconds:F1} s)";
        output.WriteLine(summary);
        output.WriteLine($"the original panicked at: {run.PanicSites()}");
        Assert.True(run.Failed == 0, $"{summary}\n\n{string.Join("\n\n", run.Failures.Take(5))}");

        // The sequences reach each difference they were written for: a rule that no longer matches
        // would fail above, and one whose marker is no longer set would pass here unseen.
        Assert.All(
            new[]
            {
                DiffVerdict.Identical, KnownDifferences.HandshakePaddingRefused, KnownDifferences.ShortDisconnectFails,
                KnownDifferences.EstablishedDisconnectIsFinal, KnownDifferences.DataTagLengthChecked, KnownDifferences.OriginalPanics,
            },
            kind => Assert.True(run.Kinds.ContainsKey(kind), $"no sequence ended as {kind}: {summary}"));
    }
}
