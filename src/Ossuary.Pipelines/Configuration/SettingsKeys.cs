using Microsoft.Extensions.Configuration;

namespace Ossuary.Pipelines.Configuration;

/// <summary>Public keys and file paths from configuration text, with the setting's path in the error: a typo must not shrink an allow-list silently.</summary>
internal static class SettingsKeys
{
    /// <summary>What the keys of <paramref name="section"/>'s settings start with: "Ossuary:Devices:", or "" at the root.</summary>
    public static string Prefix(IConfiguration section) => section is IConfigurationSection named ? named.Path + ":" : "";

    /// <summary>
    /// The keys of the list <paramref name="property"/> that parse; each entry that does not, or that no
    /// peer can prove, is added to <paramref name="problems"/> (which validation reports) by its own path.
    /// Read from the section's entries, not from a bound list: the binder numbers what it keeps from 0
    /// (entries 0 and 2, or named ones, became items 0 and 1, and a message named the wrong key), and
    /// drops an entry that is an object (<c>{ "Key": "..." }</c>) without a word.
    /// </summary>
    public static IEnumerable<OssuaryPublicKey> Parse(IConfiguration section, string property, ICollection<string> problems)
    {
        string prefix = section is IConfigurationSection named ? $"{named.Path}:{property}" : property;
        var keys = new List<OssuaryPublicKey>();
        if (!string.IsNullOrWhiteSpace(section.GetSection(property).Value))
        {
            // The binder fills a list from its items only: a value set on the list itself (an
            // environment variable without its index) would be dropped without a word.
            problems.Add($"{prefix} is set as one value, which a list ignores: write each key as an item, {prefix}:0, {prefix}:1 (environment variables: __0, __1).");
        }

        foreach (IConfigurationSection entry in section.GetSection(property).GetChildren())
        {
            if (!OssuaryPublicKey.TryParse(entry.Value, null, out OssuaryPublicKey? key))
            {
                problems.Add($"{entry.Path} is not a public key: a key is 64 hex characters (32 bytes).");
            }
            else if (key.IsUnprovable)
            {
                // Listed, it looks like someone is admitted (or trusted) while it matches nobody.
                problems.Add($"{entry.Path} is {key}, {(key.IsAnonymous ? "the key a peer without an identity sends" : "all zeros")}: no peer can prove it. Remove it.");
            }
            else
            {
                keys.Add(key);
            }
        }

        return keys;
    }

    /// <summary>
    /// A file path from configuration; one set but blank (an override meant to clear it) is a problem
    /// naming the setting, not a path that fails later with an ArgumentException that names nothing.
    /// </summary>
    public static string? FilePath(string? value, string? current, IConfiguration section, string property, ICollection<string> problems)
    {
        if (value is null)
        {
            return current;
        }

        if (string.IsNullOrWhiteSpace(value))
        {
            string setting = section is IConfigurationSection named ? $"{named.Path}:{property}" : property;
            problems.Add($"{setting} is empty: name a file, or remove the setting.");
            return current;
        }

        return value;
    }

    /// <summary>
    /// A duration from configuration that is a bare whole number is a problem naming the setting:
    /// TimeSpan reads "30" as 30 days, so a handshake timeout meant as 30 seconds held a silent peer's
    /// connection for a month. Days are still written as days ("30.00:00:00"), and options set in
    /// code take any length (a timeout as good as forever is accepted on purpose).
    /// </summary>
    public static void CheckDuration(IConfiguration section, string property, ICollection<string> problems)
    {
        string? text = section[property]?.Trim();
        if (text is { Length: > 0 } && text.All(char.IsAsciiDigit))
        {
            string setting = section is IConfigurationSection named ? $"{named.Path}:{property}" : property;
            problems.Add($"{setting} is '{text}', which configuration reads as {text} days: write hh:mm:ss (00:00:30 is 30 seconds), or {text}.00:00:00 if days are meant.");
        }
    }
}
