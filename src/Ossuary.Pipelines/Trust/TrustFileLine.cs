namespace Ossuary.Pipelines.Trust;

/// <summary>
/// Line handling shared by the trust files: <c>#</c> starts a comment line, blank lines are
/// skipped, fields are separated by spaces or tabs, and a malformed line is reported with its number.
/// </summary>
internal static class TrustFileLine
{
    private static readonly char[] Separators = [' ', '\t'];

    /// <summary>Splits a line into at most <paramref name="fields"/> fields, the last holding the rest; null for a blank or comment line.</summary>
    public static string[]? Split(string line, int fields)
    {
        string trimmed = line.Trim();
        if (trimmed.Length == 0 || trimmed[0] == '#')
        {
            return null;
        }

        return trimmed.Split(Separators, fields, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    public static OssuaryPublicKey ParseKey(string field, string source, int lineNumber) =>
        OssuaryPublicKey.TryParse(field, out OssuaryPublicKey? key)
            ? key
            : throw Malformed(source, lineNumber, "the key must be 64 hex characters (32 bytes)");

    public static FormatException Malformed(string source, int lineNumber, string problem) =>
        new($"{source}:{lineNumber}: {problem}.");
}
