namespace Ossuary.Pipelines.Loopback.Measurements;

/// <summary>What several rounds of one figure come to: the median, and how far the rounds lay apart.</summary>
/// <param name="Median">The middle round (the upper middle of an even count).</param>
/// <param name="Spread">(largest - smallest) / median; 0 for one round.</param>
internal readonly record struct Rounds(double Median, double Spread)
{
    public static Rounds Of(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0)
        {
            throw new ArgumentException("No rounds were measured.", nameof(values));
        }

        double[] sorted = [.. values.Order()];
        double median = sorted[sorted.Length / 2];
        return new Rounds(median, median > 0 ? (sorted[^1] - sorted[0]) / median : 0);
    }
}
