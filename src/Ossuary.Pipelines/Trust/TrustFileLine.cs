namespace Ossuary.Pipelines.Trust;

/// <summary>
/// Line handling shared by the trust files: <c>#</c> starts a comment line, blank lines are
/// skipped, fields are separated by spaces or tabs, and a malformed line is reported with its number.
/// </summary>
internal static class TrustFileLine
{
    /// <summary>
    /// The longest line read: a key and a comment take a few hundred characters. Past it the line is
    /// refused before more of it is read: ReadLine gathered a line however long, so an endless one
    /// (<c>--authorized-keys - &lt; /dev/zero</c>, a log piped in by mistake) filled the memory.
    /// </summary>
    public const int MaxLineLength = 64 * 1024;

    private static readonly char[] Separators = [' ', '\t'];

    /// <summary>
    /// The lines of <paramref name="reader"/> with their numbers, ended as <see cref="TextReader.ReadLine"/>
    /// ends them (CR LF, LF or CR), each at most <see cref="MaxLineLength"/> characters, and all of them at
    /// most <see cref="TrustFileSize.MaxBytes"/> characters. Ended is false only for a last line that no line
    /// break ends: what a crash leaves of a line being appended.
    /// </summary>
    /// <remarks>
    /// The whole is bounded as a file is (<see cref="TrustFileSize"/>), since a caller's reader has no end
    /// of its own: an endless one of short lines (a generator, a socket) was read for ever, every key of it kept.
    /// </remarks>
    /// <param name="reader">The lines.</param>
    /// <param name="source">Names them in error messages.</param>
    /// <param name="kind">What they are, for the message past the whole's bound ("known-hosts").</param>
    /// <exception cref="FormatException">A line is longer, or all of them are; the message gives the source (and line number).</exception>
    public static IEnumerable<(int Number, string Text, bool Ended)> Read(TextReader reader, string source, string kind)
    {
        var line = new System.Text.StringBuilder();
        int number = 0;
        bool afterCarriageReturn = false;
        long read = 0;
        while (true)
        {
            int c = reader.Read();
            if (c != -1 && ++read > TrustFileSize.MaxBytes)
            {
                throw TrustFileSize.TooLong(source, kind);
            }

            if (c == '\n' && afterCarriageReturn)
            {
                afterCarriageReturn = false; // the second half of a CR LF
                continue;
            }

            afterCarriageReturn = c == '\r';
            if (c is -1 or '\n' or '\r')
            {
                if (c == -1 && line.Length == 0)
                {
                    yield break; // the last line's break ends it; it does not start another
                }

                yield return (++number, line.ToString(), c != -1);
                line.Clear();
                if (c == -1)
                {
                    yield break;
                }

                continue;
            }

            if (line.Length == MaxLineLength)
            {
                throw Malformed(source, number + 1, $"the line is longer than {MaxLineLength} characters, which no key line is");
            }

            line.Append((char)c);
        }
    }

    /// <summary>
    /// Splits a line into at most <paramref name="fields"/> fields, the last holding the rest; null for a blank or comment line.
    /// A byte-order mark starting the line is no part of it: a file an editor saved, appended to another
    /// (<c>cat</c>), puts one in the middle, where the reader does not skip it, and in a known-hosts file
    /// it made that line's host one no server matched.
    /// </summary>
    public static string[]? Split(string line, int fields)
    {
        string trimmed = line.TrimStart('\uFEFF').Trim();
        if (trimmed.Length == 0 || trimmed[0] == '#')
        {
            return null;
        }

        return trimmed.Split(Separators, fields, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    /// <summary>
    /// The line's key. One no peer can prove (<see cref="OssuaryPublicKey.Anonymous"/> or all zeros: the
    /// handshake refuses both) is refused as the options refuse it: such a line (a placeholder, say)
    /// could never match, and a file of only such lines would admit or trust nobody while looking filled.
    /// </summary>
    public static OssuaryPublicKey ParseKey(string field, string source, int lineNumber)
    {
        if (!OssuaryPublicKey.TryParse(field, out OssuaryPublicKey? key))
        {
            throw Malformed(source, lineNumber, "the key must be 64 hex characters (32 bytes)");
        }

        return key.IsUnprovable
            ? throw Malformed(source, lineNumber, $"{key} is {(key.IsAnonymous ? "the key an anonymous client sends" : "all zeros")}, which no peer can prove; put the peer's own public key there")
            : key;
    }

    /// <summary>Refuses to write a line that <see cref="ParseKey"/> would not read back.</summary>
    public static void RequireProvable(OssuaryPublicKey key, string paramName)
    {
        if (key.IsUnprovable)
        {
            throw new ArgumentException($"{key} is {(key.IsAnonymous ? "the key an anonymous client sends" : "all zeros")}, which no peer can prove: a trust file does not take it.", paramName);
        }
    }

    public static FormatException Malformed(string source, int lineNumber, string problem) =>
        new($"{source}:{lineNumber}: {problem}.");
}
