namespace Ossuary.Pipelines.Loopback.Measurements;

/// <summary>What several rounds of one figure come to: the median, how far the rounds lay apart, and the rounds themselves.</summary>
/// <param name="Median">The middle round (the upper middle of an even count).</param>
/// <param name="Spread">(largest - smallest) / median; 0 for one round.</param>
/// <param name="Values">Each round's value, in the order the rounds ran: figures from the same rounds pair up by index.</param>
internal readonly record struct Rounds(double Median, double Spread, IReadOnlyList<double> Values)
{
    public static Rounds Of(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0)
        {
            throw new ArgumentException("No rounds were measured.", nameof(values));
        }

        double[] sorted = [.. values.Order()];
        double median = sorted[sorted.Length / 2];
        return new Rounds(median, median > 0 ? (sorted[^1] - sorted[0]) / median : 0, [.. values]);
    }

    /// <summary>
    /// <paramref name="combine"/> applied round by round to two figures measured in the same rounds,
    /// then the median: a burst of load that slows one round moves both inputs of that round alike,
    /// where a quotient of two medians can take them from different rounds. Null when the two were not
    /// measured in the same rounds.
    /// </summary>
    public static Rounds? Paired(IReadOnlyList<double>? first, IReadOnlyList<double>? second, Func<double, double, double> combine)
    {
        ArgumentNullException.ThrowIfNull(combine);
        if (first is null || second is null || first.Count == 0 || first.Count != second.Count)
        {
            return null;
        }

        return Of([.. first.Select((value, round) => combine(value, second[round]))]);
    }
}
