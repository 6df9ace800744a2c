namespace Ossuary.Pipelines.Loopback.Report;

/// <summary>One measured number, as written to the JSON file.</summary>
/// <param name="Name">Dotted name: target, measurement, variant (<c>ossuary.handshakes.parallel8</c>).</param>
/// <param name="Value">The number.</param>
/// <param name="Unit"><c>MB/s</c>, <c>handshakes/s</c>, <c>bytes</c> or <c>x</c> (a ratio).</param>
/// <param name="Baseline">The SslStream AES-GCM figure this one is compared with in the table, if any.</param>
/// <param name="Spread">
/// For a figure measured in several rounds (the median is <paramref name="Value"/>): the largest
/// round minus the smallest, over the median. Null for a figure measured once.
/// </param>
/// <param name="Rounds">For a figure measured in rounds: each round's value, in the order the rounds ran.</param>
public sealed record Figure(string Name, double Value, string Unit, string? Baseline = null, double? Spread = null, IReadOnlyList<double>? Rounds = null);
