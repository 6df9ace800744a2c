using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;

namespace Ossuary.Cli.Transfer;

/// <summary>
/// The one-off file transfer spoken inside an Ossuary connection. Sender: a header line
/// <c>OSSUARY-FILE/1 LENGTH NAME-BASE64</c>, the file's bytes, then its 32-byte SHA-256. When the
/// length is not known in advance (<c>send -</c> from a pipe) LENGTH is <c>*</c> and the bytes come
/// in chunks, each a 4-byte big-endian length and that many bytes, ended by an empty chunk.
/// Receiver: one line back, <c>OK SHA256-HEX</c> or <c>ERR REASON</c>. The sender closes after
/// the answer, since Ossuary's Disconnect ends both directions.
/// </summary>
internal static class TransferProtocol
{
    public const string Magic = "OSSUARY-FILE/1";

    /// <summary>
    /// The answer's reason (after <c>ERR </c>) for a file saved whole and named whose folder could not be synced:
    /// the file is there, but its name may not survive a power loss, so the sender is not told "OK".
    /// </summary>
    public const string SavedNotDurable = "the receiver saved the file, but could not sync its folder, so its name may not survive a power loss";

    /// <summary>The LENGTH of a stream sent in chunks.</summary>
    public const long UnknownLength = -1;

    /// <summary>The largest chunk a receiver accepts.</summary>
    public const int MaxChunk = 1024 * 1024;

    /// <summary>The longest file name, in UTF-8 bytes, that file systems take (NAME_MAX).</summary>
    public const int MaxNameBytes = 255;

    private const int MaxLineLength = 1024;

    public static string HeaderLine(string name, long length) =>
        $"{Magic} {(length == UnknownLength ? "*" : length.ToString(CultureInfo.InvariantCulture))} {Convert.ToBase64String(Encoding.UTF8.GetBytes(name))}\n";

    public static (string Name, long Length) ParseHeader(string line)
    {
        string[] parts = line.Split(' ');
        long length = UnknownLength;
        if (parts.Length != 3 || parts[0] != Magic
            || (parts[1] != "*" && !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out length)))
        {
            throw new CliException("the sender did not speak the ossuary file-transfer protocol");
        }

        string name;
        try
        {
            name = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(Convert.FromBase64String(parts[2]));
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            throw new CliException("the sender sent a malformed file name");
        }

        // Only a bare, printable file name: never a path that could escape the output directory,
        // never escape sequences for the terminal that prints it, never '-' (stdin or stdout to
        // every command of the tool, so a file of that name would be read or written as neither).
        string safe = Path.GetFileName(name);
        if (safe.Length == 0 || safe is "." or ".." or StdPaths.Dash || safe != name || name.Any(IsUnprintable))
        {
            throw new CliException($"the sender asked for an unsafe file name '{Printable(name)}'");
        }

        // Refused now, not after the whole file when it cannot be named.
        int bytes = Encoding.UTF8.GetByteCount(name);
        if (bytes > MaxNameBytes)
        {
            throw new CliException($"the sender asked for a file name of {bytes} bytes; a file name has at most {MaxNameBytes}");
        }

        return (safe, length);
    }

    /// <summary>A sender-supplied text with its control characters replaced, safe to print on a terminal.</summary>
    public static string Printable(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            builder.Append(IsUnprintable(c) ? '?' : c);
        }

        return builder.ToString();
    }

    /// <summary>
    /// A control character (terminal escapes), or one of Unicode's bidirectional controls, which
    /// reorder what follows them on screen ("invoice\u202Efdp.exe" shows as "invoiceexe.pdf"): a
    /// name holding one reads as another file in a terminal or a listing.
    /// </summary>
    public static bool IsUnprintable(char c) =>
        char.IsControl(c) || c is '\u061C' or '\u200E' or '\u200F' or (>= '\u202A' and <= '\u202E') or (>= '\u2066' and <= '\u2069');

    /// <summary>Writes a line; false if the connection had already ended (the peer closed), so that the line was never sent.</summary>
    public static async Task<bool> TryWriteLineAsync(PipeWriter output, string line, CancellationToken cancellationToken) =>
        !(await output.WriteAsync(Encoding.UTF8.GetBytes(line), cancellationToken)).IsCompleted;

    /// <summary>Writes a chunk header (the length of the bytes that follow; 0 ends the stream).</summary>
    public static void WriteChunkHeader(PipeWriter output, int length)
    {
        BinaryPrimitives.WriteInt32BigEndian(output.GetSpan(4), length);
        output.Advance(4);
    }

    /// <summary>Reads one <c>\n</c>-terminated line; null if the peer closed first.</summary>
    public static async Task<string?> ReadLineAsync(PipeReader input, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult read = await input.ReadAsync(cancellationToken);
            var reader = new SequenceReader<byte>(read.Buffer);
            if (reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n'))
            {
                string text = Encoding.UTF8.GetString(line);
                input.AdvanceTo(reader.Position);
                return text;
            }

            if (read.Buffer.Length > MaxLineLength)
            {
                throw new CliException("the peer sent an over-long protocol line");
            }

            input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
            if (read.IsCompleted)
            {
                return null;
            }
        }
    }
}
