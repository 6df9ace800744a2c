using Microsoft.Extensions.Configuration;

namespace Ossuary.Pipelines.Configuration;

/// <summary>Public keys from configuration text, with the setting's path in the error: a typo must not shrink an allow-list silently.</summary>
internal static class SettingsKeys
{
    /// <summary>The keys that parse; each entry that does not is added to <paramref name="problems"/>, which validation reports.</summary>
    public static IEnumerable<OssuaryPublicKey> Parse(List<string> entries, IConfiguration section, string property, ICollection<string> problems)
    {
        string prefix = section is IConfigurationSection named ? $"{named.Path}:{property}" : property;
        var keys = new List<OssuaryPublicKey>(entries.Count);
        for (int i = 0; i < entries.Count; i++)
        {
            if (OssuaryPublicKey.TryParse(entries[i], out OssuaryPublicKey? key))
            {
                keys.Add(key);
            }
            else
            {
                problems.Add($"{prefix}:{i} is not a public key: a key is 64 hex characters (32 bytes).");
            }
        }

        return keys;
    }
}
