using System.Globalization;
using System.Text;

namespace Ossuary.Samples.Telemetry;

/// <summary>
/// A device's text (its sensor names) as it may be shown on an operator's terminal: any byte but a
/// space or a newline is a valid name, and an escape sequence, a carriage return or a bidirectional
/// override would let a device clear the screen, overwrite another device's row or reorder it.
/// </summary>
public static class PrintableText
{
    /// <summary><paramref name="text"/> with every control and format character written as <c>\uXXXX</c> (a backslash as <c>\\</c>).</summary>
    public static string Escape(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!text.Any(NeedsEscape))
        {
            return text;
        }

        var escaped = new StringBuilder(text.Length + 16);
        foreach (char c in text)
        {
            if (NeedsEscape(c))
            {
                // The backslash too, so that an escaped name cannot be told from one that holds "\u001b" as text.
                escaped.Append(c == '\\' ? @"\\" : string.Create(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"));
            }
            else
            {
                escaped.Append(c);
            }
        }

        return escaped.ToString();
    }

    private static bool NeedsEscape(char c) =>
        c == '\\' || char.IsControl(c) || char.GetUnicodeCategory(c) == UnicodeCategory.Format;
}
