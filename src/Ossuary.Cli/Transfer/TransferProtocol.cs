using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;

namespace Ossuary.Cli.Transfer;

/// <summary>
/// The one-off file transfer spoken inside an Ossuary connection. Sender: a header line
/// <c>OSSUARY-FILE/1 LENGTH NAME-BASE64</c>, the file's bytes, then its 32-byte SHA-256.
/// Receiver: one line back, <c>OK SHA256-HEX</c> or <c>ERR REASON</c>. The sender closes after
/// the answer, since Ossuary's Disconnect ends both directions.
/// </summary>
internal static class TransferProtocol
{
    public const string Magic = "OSSUARY-FILE/1";
    private const int MaxLineLength = 1024;

    public static string HeaderLine(string name, long length) =>
        $"{Magic} {length.ToString(CultureInfo.InvariantCulture)} {Convert.ToBase64String(Encoding.UTF8.GetBytes(name))}\n";

    public static (string Name, long Length) ParseHeader(string line)
    {
        string[] parts = line.Split(' ');
        if (parts.Length != 3 || parts[0] != Magic
            || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long length))
        {
            throw new CliException("the sender did not speak the ossuary file-transfer protocol");
        }

        string name;
        try
        {
            name = Encoding.UTF8.GetString(Convert.FromBase64String(parts[2]));
        }
        catch (FormatException)
        {
            throw new CliException("the sender sent a malformed file name");
        }

        // Only a bare file name: never a path that could escape the output directory.
        string safe = Path.GetFileName(name);
        if (safe.Length == 0 || safe is "." or ".." || safe != name)
        {
            throw new CliException($"the sender asked for an unsafe file name '{name}'");
        }

        return (safe, length);
    }

    public static async Task WriteLineAsync(PipeWriter output, string line, CancellationToken cancellationToken) =>
        await output.WriteAsync(Encoding.UTF8.GetBytes(line), cancellationToken);

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
