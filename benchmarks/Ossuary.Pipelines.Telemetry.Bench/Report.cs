using System.Globalization;
using System.Text.Json;

namespace Ossuary.Pipelines.Telemetry.Bench;

/// <summary>The figures of one run, printed as a table and written in the JSON shape of <c>ossuary bench</c> (machine, mode, load, figures, targets).</summary>
internal sealed class Report(bool quick)
{
    private readonly List<(string Name, double Value, string Unit)> _figures = [];
    private readonly List<(string Target, string Measured, bool? Met)> _targets = [];

    public string LoadAtStart { get; } = LoadAverage();

    public string? LoadAtEnd { get; set; }

    public void Add(string name, double value, string unit)
    {
        _figures.Add((name, value, unit));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-50} {value,14:0.###} {unit}"));
    }

    /// <summary>A figure's value, or NaN if it was not measured.</summary>
    public double this[string name] => _figures.FirstOrDefault(f => f.Name == name) is { Name: not null } f ? f.Value : double.NaN;

    public void Target(string target, string measured, bool? met) => _targets.Add((target, measured, met));

    public void WriteTargets(TextWriter writer)
    {
        writer.WriteLine($"Load average (1/5/15 min): {LoadAtStart} at the start, {LoadAtEnd} at the end{(quick ? "; --quick run" : "")}");
        writer.WriteLine("Targets (this run):");
        foreach ((string target, string measured, bool? met) in _targets)
        {
            writer.WriteLine($"  [{(met is null ? "?" : met.Value ? "met" : "NOT met")}] {target}: {measured}");
        }
    }

    public void WriteJson(string path)
    {
        using FileStream stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("machine", $"{Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}");
        json.WriteString("mode", quick ? "quick" : "full");
        json.WriteString("loadAtStart", LoadAtStart);
        json.WriteString("loadAtEnd", LoadAtEnd);
        json.WriteStartArray("figures");
        foreach ((string name, double value, string unit) in _figures)
        {
            json.WriteStartObject();
            json.WriteString("name", name);
            json.WriteNumber("value", Math.Round(value, 3));
            json.WriteString("unit", unit);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartArray("targets");
        foreach ((string target, string measured, bool? met) in _targets)
        {
            json.WriteStartObject();
            json.WriteString("target", target);
            json.WriteString("measured", measured);
            if (met is bool value)
            {
                json.WriteBoolean("met", value);
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

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
        catch (UnauthorizedAccessException)
        {
            return "?";
        }
    }
}
