using System.CommandLine;
using System.Globalization;

namespace Ossuary.Samples.Telemetry.Commands;

/// <summary>Thrown for a command line that cannot run; the message says what is wrong (exit 2).</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>Whole-number options whose bounds the parser checks, so that a bad value is a plain sentence and exit 2.</summary>
internal static class SampleOptions
{
    public static Option<int> Int(string name, string description, int fallback, int min = 0, int max = int.MaxValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => fallback,
        CustomParser = result =>
        {
            if (result.Tokens.Count == 0)
            {
                return fallback;
            }

            string text = result.Tokens[0].Value;
            if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value >= min && value <= max)
            {
                return value;
            }

            result.AddError($"{name} must be a whole number from {min} to {max}, not '{text}'");
            return fallback;
        },
    };

    public static Option<string> Text(string name, string description, string fallback) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => fallback,
    };
}
