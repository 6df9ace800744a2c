using System.Globalization;

namespace Ossuary.Samples.Telemetry.Commands;

/// <summary>Thrown for a command line that cannot run; the message says what is wrong.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>The options of a command line: <c>--name value</c> pairs, each name at most once.</summary>
internal sealed class CommandLine
{
    private readonly Dictionary<string, string> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public CommandLine(IEnumerable<string> args)
    {
        using IEnumerator<string> arg = args.GetEnumerator();
        while (arg.MoveNext())
        {
            string name = arg.Current;
            if (!name.StartsWith("--", StringComparison.Ordinal) || name.Length == 2)
            {
                throw new UsageException($"expected an option like --port, got '{name}'");
            }

            if (!arg.MoveNext())
            {
                throw new UsageException($"{name} needs a value");
            }

            if (!_options.TryAdd(name[2..], arg.Current))
            {
                throw new UsageException($"{name} is given twice");
            }
        }
    }

    public string String(string name, string? fallback = null)
    {
        _used.Add(name);
        return _options.TryGetValue(name, out string? value) ? value
            : fallback ?? throw new UsageException($"--{name} is required");
    }

    public int Int(string name, int fallback, int min = 0, int max = int.MaxValue)
    {
        _used.Add(name);
        if (!_options.TryGetValue(name, out string? text))
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value >= min && value <= max
            ? value
            : throw new UsageException($"--{name} must be a whole number from {min} to {max}, got '{text}'");
    }

    /// <summary>Call after reading every option: a misspelled one is an error, not a silent default.</summary>
    public void RejectUnknown()
    {
        string? unknown = _options.Keys.FirstOrDefault(name => !_used.Contains(name));
        if (unknown is not null)
        {
            throw new UsageException($"unknown option --{unknown}");
        }
    }
}
