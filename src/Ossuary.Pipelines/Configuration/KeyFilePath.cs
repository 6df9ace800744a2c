namespace Ossuary.Pipelines.Configuration;

/// <summary>
/// A key-file setting that no file can have (empty, blank, or holding a NUL character, which JSON's
/// <c>\u0000</c> can put in a setting) is a validation failure naming the setting: the file API's
/// ArgumentException ("Null character in path") named neither the setting nor the options, and went
/// past the options validator, so start-up failed with it instead of the message that says what to fix.
/// </summary>
internal static class KeyFilePath
{
    /// <param name="path">The setting's value; null (not set) is fine.</param>
    /// <param name="setting">The setting as a message names it ("OssuaryServerOptions.IdentityKeyFile").</param>
    /// <param name="inConfiguration">Where it is in configuration (" (Ossuary:IdentityKeyFile in configuration)"), or "".</param>
    /// <exception cref="InvalidOperationException"><paramref name="path"/> cannot name a file.</exception>
    public static void Require(string? path, string setting, string inConfiguration)
    {
        if (path is null)
        {
            return;
        }

        if (string.IsNullOrWhiteSpace(path))
        {
            throw new InvalidOperationException($"{setting}{inConfiguration} is empty: name a file, or leave it unset.");
        }

        if (path.Contains('\0', StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{setting}{inConfiguration} holds a NUL character, which no file name can: '{path.Replace("\0", "\\0", StringComparison.Ordinal)}'.");
        }
    }
}
