using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Ossuary.Cli;

/// <summary>
/// Options whose values the parser checks itself, so that a bad value is one plain sentence and
/// exit 2 before any work starts (never a .NET type name, never an exception from deep inside).
/// </summary>
internal static class CliOptions
{
    /// <summary>The word that makes <c>--wait</c> wait until the peer closes.</summary>
    public const string Forever = "forever";

    /// <summary>
    /// A TCP port, 1-65535; with <paramref name="anyFree"/> (a server's port) also 0, which asks the
    /// system for a free port: the server prints the one it got, as it prints any port it listens on,
    /// which is how scripts and tests start a server with no race for a port someone else may take.
    /// </summary>
    public static Option<int> Port(string description, bool anyFree = false) => new("--port", "-p")
    {
        Description = anyFree ? $"{description} 0 picks a free port (printed on stderr)." : description,
        Required = true,
        CustomParser = result =>
        {
            if (result.Tokens.Count == 0)
            {
                return 0; // absent: "required" says so
            }

            string text = result.Tokens[0].Value;
            int lowest = anyFree ? 0 : 1;
            if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port >= lowest && port <= 65535)
            {
                return port;
            }

            result.AddError($"--port must be a port number from {lowest} to 65535, not '{text}'");
            return 0;
        },
    };

    /// <summary>
    /// A duration in seconds (0 or more; fractions allowed), or 'forever' where <paramref name="allowForever"/>.
    /// Kept as text so that help shows the default as written; <see cref="Get"/> reads it.
    /// </summary>
    public static Option<string?> Seconds(string name, string description, double? fallback, bool allowForever = false)
    {
        var option = new Option<string?>(name)
        {
            Description = description,
            HelpName = allowForever ? "SECONDS|forever" : "SECONDS",
        };
        if (fallback is { } value)
        {
            option.DefaultValueFactory = _ => value.ToString(CultureInfo.InvariantCulture);
        }

        option.Validators.Add(result =>
        {
            if (result.Tokens.Count == 0)
            {
                return; // the default
            }

            string text = result.Tokens[0].Value;
            if (!TryParseSeconds(text, allowForever, out _))
            {
                result.AddError(allowForever
                    ? $"{name} must be a number of seconds (0 or more) or '{Forever}', not '{text}'"
                    : $"{name} must be a number of seconds (0 or more), not '{text}'");
            }
        });
        return option;
    }

    /// <summary>The value of a <see cref="Seconds"/> option; null for 'forever' or none given.</summary>
    public static TimeSpan? Get(ParseResult parse, Option<string?> option) =>
        parse.GetValue(option) is { } text && TryParseSeconds(text, allowForever: true, out TimeSpan? value) ? value : null;

    private static bool TryParseSeconds(string text, bool allowForever, out TimeSpan? value)
    {
        value = null;
        if (allowForever && string.Equals(text, Forever, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        if (double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double seconds) && seconds <= 24 * 3600 * 365)
        {
            value = TimeSpan.FromSeconds(seconds);
            return true;
        }

        return false;
    }

    /// <summary>Describes a wait for messages: "1 s", "forever".</summary>
    public static string Describe(TimeSpan? wait) =>
        wait is { } value ? value.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + " s" : Forever;
}
