using System.Globalization;

namespace Ossuary.Pipelines.Loopback.Report;

/// <summary>One of the issue's targets as this run measured it.</summary>
/// <param name="Target">The target, in words.</param>
/// <param name="Measured">The ratio and the two figures it came from.</param>
/// <param name="Met">Whether the run met it; null if a figure is missing.</param>
public sealed record TargetCheck(string Target, string Measured, bool? Met)
{
    /// <summary>
    /// What the same run says the physical ceiling allows for this ratio (the protocol's packets
    /// on the wire, the cipher the protocol fixes), when it was measured. The ceilings are
    /// estimates (a client that batches its writes can beat plain TCP's CPU per MB by some per cent),
    /// so a target the ceiling misses by more than that cannot be met by any adapter.
    /// </summary>
    public string? Limit { get; init; }

    /// <summary>
    /// Adds the ratio the ceiling <paramref name="ceiling"/> reaches against the target's baseline, and how close the
    /// measured value is to the ceiling: a line of <see cref="Limit"/>, after any earlier ceiling's.
    /// </summary>
    /// <param name="what">The ceiling, in words.</param>
    /// <param name="value">The measured figure.</param>
    /// <param name="ceiling">The ceiling's figure.</param>
    /// <param name="baseline">The figure the target is set against.</param>
    /// <param name="factor">The target's factor.</param>
    /// <param name="pairedToCeiling">The median of the rounds' own value-to-ceiling ratios, when both were measured in the same rounds.</param>
    internal TargetCheck WithCeiling(string what, double value, double ceiling, double baseline, double factor, double pairedToCeiling = double.NaN)
    {
        if (double.IsNaN(ceiling) || double.IsNaN(baseline) || baseline <= 0 || ceiling <= 0 || double.IsNaN(value))
        {
            return this;
        }

        double allowed = ceiling / baseline;
        string verdict = allowed >= factor
            ? "the ceiling allows the target"
            : $"the target needs {Ratio(factor / allowed)} the ceiling";
        string limit = $"{what} = {BenchReport.Format(ceiling)}, {Ratio(allowed)} the baseline: {verdict}; measured {Ratio(double.IsFinite(pairedToCeiling) ? pairedToCeiling : value / ceiling)} the ceiling";
        return this with { Limit = Limit is null ? limit : Limit + "\n" + limit };
    }

    private static string Ratio(double ratio) => ratio.ToString("0.00", CultureInfo.InvariantCulture) + "x";

    /// <param name="target">The target, in words.</param>
    /// <param name="value">The measured figure (a median).</param>
    /// <param name="baseline">The figure it is compared with (a median).</param>
    /// <param name="factor">The least ratio that meets the target.</param>
    /// <param name="pairedRatio">
    /// When both figures were measured in the same rounds: the median of each round's own ratio,
    /// which is what is checked (the quotient of the two medians can mix rounds).
    /// </param>
    internal static TargetCheck AtLeast(string target, double value, double baseline, double factor, double pairedRatio = double.NaN) => Compare(target, value, baseline, factor, atLeast: true, pairedRatio);

    internal static TargetCheck AtMost(string target, double value, double baseline, double factor) => Compare(target, value, baseline, factor, atLeast: false, double.NaN);

    /// <summary>
    /// Met below 1 byte per write on average: the smallest object is 24 bytes, so that excludes any
    /// allocation per frame; what remains is the process's background (timers, Kestrel's heartbeat).
    /// </summary>
    internal static TargetCheck BelowOneByte(string target, double value) =>
        new(target, double.IsNaN(value) ? "not measured" : $"{value.ToString("0.##", CultureInfo.InvariantCulture)} B per write on average (any allocation per frame would be >= 24 B)", double.IsNaN(value) ? null : value < 1);

    private static TargetCheck Compare(string target, double value, double baseline, double factor, bool atLeast, double pairedRatio)
    {
        if (double.IsNaN(value) || double.IsNaN(baseline) || baseline <= 0)
        {
            return new TargetCheck(target, "not measured", null);
        }

        bool paired = double.IsFinite(pairedRatio);
        double ratio = paired ? pairedRatio : value / baseline;
        string measured = $"{ratio.ToString("0.00", CultureInfo.InvariantCulture)}x{(paired ? ", the median of the rounds' own ratios" : "")} ({BenchReport.Format(value)} against {BenchReport.Format(baseline)}{(paired ? " in medians" : "")}; needs {(atLeast ? ">=" : "<=")} {factor.ToString("0.##", CultureInfo.InvariantCulture)}x)";
        return new TargetCheck(target, measured, atLeast ? ratio >= factor : ratio <= factor);
    }
}
