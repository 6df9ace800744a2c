using System.Globalization;
using System.Text.Json;

namespace Ossuary.Pipelines.Loopback.Report;

/// <summary>Every figure of one run, the table that compares them with SslStream AES-GCM, the targets, and the JSON file.</summary>
public sealed class BenchReport
{
    /// <summary>The figure every ratio is taken against: SslStream TLS 1.3 with TLS_AES_256_GCM_SHA384.</summary>
    public const string Reference = "tls13-aesgcm";

    private readonly List<Figure> _figures = [];

    internal BenchReport(string machine, bool quick)
    {
        Machine = machine;
        IsQuick = quick;
    }

    /// <summary>CPU, cores, OS, runtime and OpenSSL version.</summary>
    public string Machine { get; }

    /// <summary>True for a <c>--quick</c> run.</summary>
    public bool IsQuick { get; }

    /// <summary>Load averages (1, 5, 15 min) when the run started and when it ended: others' work skews the figures.</summary>
    public string? LoadAtStart { get; internal set; }

    /// <inheritdoc cref="LoadAtStart"/>
    public string? LoadAtEnd { get; internal set; }

    /// <summary>The figures in the order they were measured.</summary>
    public IReadOnlyList<Figure> Figures => _figures;

    internal void Add(string name, double value, string unit) => _figures.Add(new Figure(name, value, unit, BaselineOf(name)));

    internal void Add(string name, Measurements.Rounds rounds, string unit) => _figures.Add(new Figure(name, rounds.Median, unit, BaselineOf(name), rounds.Spread, rounds.Values));

    /// <summary>Each round's value of a figure measured in rounds, in the order they ran; null otherwise.</summary>
    internal IReadOnlyList<double>? RoundsOf(string name) => _figures.FirstOrDefault(f => f.Name == name)?.Rounds;

    /// <summary>False when the harness runs from a Debug build, whose figures mean little (set by the caller).</summary>
    public bool Optimized { get; set; } = true;

    /// <summary>The value of a figure, or NaN if it was not measured.</summary>
    public double this[string name] => _figures.FirstOrDefault(f => f.Name == name)?.Value ?? double.NaN;

    /// <summary>The figure's value over its SslStream AES-GCM counterpart's; NaN where there is none.</summary>
    public double RatioToReference(Figure figure) =>
        figure.Baseline is null || figure.Baseline == figure.Name || this[figure.Baseline] is not (> 0 and var baseline) ? double.NaN : figure.Value / baseline;

    /// <summary>The project's performance targets (issue 16), each with the measured ratio and whether this run met it.</summary>
    public IReadOnlyList<TargetCheck> Targets()
    {
        double ossuary = this["ossuary.throughput"];
        double fasterTls = Math.Max(this["tls13-aesgcm.throughput"], this["tls13-chacha.throughput"]);
        double throughputCeiling = this["ossuary.throughput.ceiling"];
        const string ThroughputCeiling = "ceiling (ossuary's busy cores at plain tcp's CPU per MB plus the record layer's)";
        return
        [
            TargetCheck.AtLeast("Throughput, 16 KiB writes: >= 1.2x the faster SslStream TLS 1.3 suite", ossuary, fasterTls, 1.2)
                .WithCeiling(ThroughputCeiling, ossuary, throughputCeiling, fasterTls, 1.2),
            TargetCheck.AtLeast("Throughput, 16 KiB writes: >= 1.3x Kestrel + UseHttps (tls13-kestrel)", ossuary, this["tls13-kestrel.throughput"], 1.3)
                .WithCeiling(ThroughputCeiling, ossuary, throughputCeiling, this["tls13-kestrel.throughput"], 1.3),
            TargetCheck.AtLeast("Throughput, 16 KiB writes: >= 0.85x plain TCP into Kestrel (tcp-kestrel)", ossuary, this["tcp-kestrel.throughput"], 0.85)
                .WithCeiling(ThroughputCeiling, ossuary, throughputCeiling, this["tcp-kestrel.throughput"], 0.85),
            Handshakes("Handshakes/s, sequential: >= 0.8x the sequential ceiling (TCP connect + crypto, one after the other)", sequential: true, "ossuary.handshakes.ceiling.sequential", 0.8, "vs-ceiling"),
            Handshakes("Handshakes/s, 8 in parallel: >= 0.8x the ceiling (TCP connect + crypto, every core busy)", sequential: false, "ossuary.handshakes.ceiling", 0.8, "vs-ceiling"),
            Handshakes("Handshakes/s, sequential: >= 4x SslStream TLS 1.3", sequential: true, "tls13.handshakes.sequential", 4, "vs-tls13"),
            Handshakes("Handshakes/s, 8 in parallel: >= 4x SslStream TLS 1.3", sequential: false, "tls13.handshakes.parallel8", 4, "vs-tls13"),
            TargetCheck.AtMost("Idle connection, managed heap: <= 1/4 of SslStream TLS 1.3", this["ossuary.idle.managed"], this["tls13.idle.managed"], 0.25),
            TargetCheck.BelowOneByte("No allocation per frame: bytes allocated per 16 KiB write, whole process (BenchmarkDotNet measures 0 B per frame both ways)", this["ossuary.throughput.alloc"]),
        ];
    }

    /// <summary>
    /// A handshake target: ossuary's rate against <paramref name="baseline"/>, checked on the rounds' paired ratio
    /// (<paramref name="paired"/>), with what the two packets ceilings (plain TCP, and into Kestrel) allow.
    /// </summary>
    private TargetCheck Handshakes(string target, bool sequential, string baseline, double factor, string paired)
    {
        string rate = sequential ? "ossuary.handshakes.sequential" : "ossuary.handshakes.parallel8";
        string variant = sequential ? ".sequential" : "";
        double value = this[rate];
        return TargetCheck.AtLeast(target, value, this[baseline], factor, this[$"{rate}.{paired}"])
            .WithCeiling("ceiling with the protocol's packets (tcp-packets + crypto)", value, this[$"ossuary.handshakes.ceiling.packets{variant}"], this[baseline], factor, this[$"{rate}.vs-ceiling.packets"])
            .WithCeiling("the same packets into Kestrel (tcp-packets-kestrel + crypto)", value, this[$"ossuary.handshakes.ceiling.kestrel-packets{variant}"], this[baseline], factor, this[$"{rate}.vs-ceiling.kestrel-packets"]);
    }

    /// <summary>The comparison's rows: a label and the figure's name after the target's prefix.</summary>
    private static readonly (string Label, string Measurement)[] ComparisonRows =
    [
        ("throughput, 16 KiB writes (MB/s)", "throughput"),
        ("throughput, 1 KiB writes (MB/s)", "throughput.1k"),
        ("CPU per MB, 16 KiB writes, both ends (us)", "throughput.cpu"),
        ("handshakes/s, one after another", "handshakes.sequential"),
        ("handshakes/s, 8 at once", "handshakes.parallel8"),
        ("CPU per connection (us)", "handshakes.cpu"),
        ("allocated per connection (B)", "handshakes.alloc"),
        ("idle connection pair, managed heap (B)", "idle.managed"),
        ("idle connection pair, working set (B)", "idle.workingset"),
    ];

    /// <summary>The comparison's columns, in order: the target and the prefix of its handshake and idle figures.</summary>
    private static readonly (string Target, string HandshakePrefix)[] ComparisonColumns =
    [
        ("tcp", "tcp"), ("tcp-packets", "tcp-packets"), ("tcp-packets-kestrel", "tcp-packets-kestrel"), ("tcp-kestrel", "tcp-kestrel"), (Reference, "tls13"), ("tls13-chacha", "tls13-chacha"),
        ("tls13-kestrel", "tls13-kestrel"), ("ossuary", "ossuary"), ("ossuary-64k", "ossuary-64k"), ("ossuary-raw", "ossuary-raw"),
    ];

    /// <summary>
    /// Writes what a user reads first: one row per measurement, one column per target that was
    /// measured, each value with its ratio to SslStream TLS 1.3 AES-GCM (the README's table).
    /// </summary>
    public void WriteComparison(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var columns = ComparisonColumns.Where(c => ComparisonRows.Any(r => !double.IsNaN(this[NameOf(c, r.Measurement)]))).ToList();
        var rows = ComparisonRows.Where(r => columns.Any(c => !double.IsNaN(this[NameOf(c, r.Measurement)]))).ToList();
        if (columns.Count == 0 || rows.Count == 0)
        {
            return;
        }

        string[][] cells = [.. rows.Select(row => columns.Select(column => Cell(column, row.Measurement)).ToArray())];
        int[] widths = [.. columns.Select((column, i) => Math.Max(column.Target.Length, cells.Max(line => line[i].Length)))];
        writer.WriteLine($"| {"figure",-42} | {string.Join(" | ", columns.Select((c, i) => c.Target.PadLeft(widths[i])))} |");
        writer.WriteLine($"|{new string('-', 44)}|{string.Join("|", widths.Select(w => new string('-', w + 1) + ":"))}|");
        for (int r = 0; r < rows.Count; r++)
        {
            writer.WriteLine($"| {rows[r].Label,-42} | {string.Join(" | ", cells[r].Select((cell, i) => cell.PadLeft(widths[i])))} |");
        }
    }

    private string Cell((string Target, string HandshakePrefix) column, string measurement)
    {
        Figure? figure = _figures.FirstOrDefault(f => f.Name == NameOf(column, measurement));
        if (figure is null)
        {
            return "";
        }

        double ratio = RatioToReference(figure);
        return Format(figure.Value) + (double.IsNaN(ratio) ? "" : $" ({ratio.ToString("0.00", CultureInfo.InvariantCulture)}x)");
    }

    private static string NameOf((string Target, string HandshakePrefix) column, string measurement) =>
        (measurement.StartsWith("throughput", StringComparison.Ordinal) ? column.Target : column.HandshakePrefix) + "." + measurement;

    /// <summary>
    /// Writes the comparison table: every figure, the spread of its rounds, and its ratio to
    /// SslStream AES-GCM; with <paramref name="includeTargets"/>, the project's targets after it.
    /// </summary>
    public void WriteTable(TextWriter writer, bool includeTargets = false)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteLine($"Machine: {Machine}");
        writer.WriteLine($"Load average (1/5/15 min): {LoadAtStart ?? "?"} at the start, {LoadAtEnd ?? "?"} at the end{(IsQuick ? "; --quick run" : "")}");
        if (!Optimized)
        {
            writer.WriteLine("WARNING: a Debug build: these figures say little about a Release build.");
        }

        writer.WriteLine("Ratios are to SslStream TLS 1.3 AES-GCM in this run; compare ratios within one run only.");
        writer.WriteLine();
        WriteComparison(writer);
        writer.WriteLine();
        writer.WriteLine("Every figure; spread: (largest - smallest round) / median, for figures measured in rounds.");
        writer.WriteLine();
        writer.WriteLine($"| {"Figure",-40} | {"Value",12} | {"Unit",-13} | {"Spread",7} | vs {Reference} |");
        writer.WriteLine($"|{new string('-', 42)}|{new string('-', 13)}:|{new string('-', 15)}|{new string('-', 8)}:|{new string('-', 17)}:|");
        foreach (Figure figure in _figures)
        {
            double ratio = RatioToReference(figure);
            string ratioText = !double.IsFinite(ratio) ? "" : ratio.ToString("0.00", CultureInfo.InvariantCulture) + "x";
            string spreadText = figure.Spread is double spread && double.IsFinite(spread) ? (spread * 100).ToString("0", CultureInfo.InvariantCulture) + "%" : "";
            string value = figure.Unit == "x" && double.IsFinite(figure.Value) ? figure.Value.ToString("0.00", CultureInfo.InvariantCulture) : Format(figure.Value);
            writer.WriteLine($"| {figure.Name,-40} | {value,12} | {figure.Unit,-13} | {spreadText,7} | {ratioText,16} |");
        }

        if (includeTargets)
        {
            writer.WriteLine();
            writer.WriteLine("Targets (this run):");
            foreach (TargetCheck check in Targets())
            {
                writer.WriteLine($"  [{(check.Met is null ? "?" : check.Met.Value ? "met" : "NOT met")}] {check.Target}: {check.Measured}");
                if (check.Limit is not null)
                {
                    foreach (string line in check.Limit.Split('\n'))
                    {
                        writer.WriteLine($"        {line}");
                    }
                }
            }
        }
    }

    /// <summary>Writes <c>{"machine": ..., "figures": [{"name", "value", "unit"}]}</c> plus the load averages and targets.</summary>
    public void WriteJson(Stream stream)
    {
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("machine", Machine);
        json.WriteString("mode", IsQuick ? "quick" : "full");
        json.WriteBoolean("optimized", Optimized);
        json.WriteString("loadAtStart", LoadAtStart);
        json.WriteString("loadAtEnd", LoadAtEnd);
        json.WriteStartArray("figures");
        foreach (Figure figure in _figures)
        {
            json.WriteStartObject();
            json.WriteString("name", figure.Name);
            WriteNumber(json, "value", figure.Value);
            json.WriteString("unit", figure.Unit);
            if (figure.Spread is double spread)
            {
                WriteNumber(json, "spread", spread);
            }

            if (figure.Rounds is { } rounds)
            {
                json.WriteStartArray("rounds");
                foreach (double round in rounds)
                {
                    WriteNumber(json, null, round);
                }

                json.WriteEndArray();
            }

            double ratio = RatioToReference(figure);
            if (!double.IsNaN(ratio))
            {
                WriteNumber(json, "ratioTo" + "Tls13AesGcm", ratio);
            }

            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartArray("targets");
        foreach (TargetCheck check in Targets())
        {
            json.WriteStartObject();
            json.WriteString("target", check.Target);
            json.WriteString("measured", check.Measured);
            if (check.Limit is not null)
            {
                json.WriteString("limit", check.Limit);
            }
            if (check.Met is bool met)
            {
                json.WriteBoolean("met", met);
            }
            else
            {
                json.WriteNull("met");
            }

            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    internal static string Format(double value) => !double.IsFinite(value) ? "-"
        : Math.Abs(value) >= 100 ? value.ToString("N0", CultureInfo.InvariantCulture)
        : value.ToString("N1", CultureInfo.InvariantCulture);

    // JSON has no infinity: a figure that came out infinite (a division by a round that measured
    // nothing) is written as null rather than failing the whole file after a run.
    // A null name writes an array element.
    private static void WriteNumber(Utf8JsonWriter json, string? name, double value)
    {
        if (name is not null)
        {
            json.WritePropertyName(name);
        }

        if (double.IsFinite(value))
        {
            json.WriteNumberValue(Math.Round(value, 3));
        }
        else
        {
            json.WriteNullValue();
        }
    }

    /// <summary>The SslStream AES-GCM figure a figure is compared with.</summary>
    private static string? BaselineOf(string name)
    {
        int dot = name.IndexOf('.', StringComparison.Ordinal);
        string measurement = name[(dot + 1)..];
        return measurement switch
        {
            _ when measurement.Contains(".vs-", StringComparison.Ordinal) => null, // a ratio already
            "handshakes.crypto-bound" => "tls13.handshakes.sequential",
            "handshakes.crypto-bound.parallel" => "tls13.handshakes.parallel8",
            "handshakes.crypto-bound.cpu" => "tls13.handshakes.cpu",
            "handshakes.cpu" => "tls13.handshakes.cpu",
            "handshakes.ceiling" => "tls13.handshakes.parallel8",
            "handshakes.ceiling.sequential" => "tls13.handshakes.sequential",
            "handshakes.ceiling.packets" => "tls13.handshakes.parallel8",
            "handshakes.ceiling.packets.sequential" => "tls13.handshakes.sequential",
            "handshakes.ceiling.kestrel-packets" => "tls13.handshakes.parallel8",
            "handshakes.ceiling.kestrel-packets.sequential" => "tls13.handshakes.sequential",
            _ when measurement.StartsWith("handshakes.", StringComparison.Ordinal) || measurement.StartsWith("idle.", StringComparison.Ordinal) => "tls13." + measurement,
            _ when measurement.StartsWith("throughput", StringComparison.Ordinal) => $"{Reference}.{measurement}",
            _ => null,
        };
    }
}
