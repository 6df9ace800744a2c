using System.Buffers;
using System.Buffers.Text;
using System.IO.Pipelines;
using System.Text;
using Ossuary.Pipelines;
using Ossuary.Samples.Telemetry.Server;

namespace Ossuary.Samples.Telemetry.Load;

/// <summary>
/// A device's last step before it disconnects: <c>sync</c>, and the server's <c>ok N</c>. A flush only
/// says the bytes left the device. Readings sent to a server whose allow-list refused the device after
/// the handshake, or while its shutdown Disconnect was on the way, are flushed as well and never read:
/// without the answer, the device would report them delivered.
/// </summary>
internal static class DeliveryCheck
{
    /// <summary>Asks the server what it took and throws unless that is every one of the <paramref name="sent"/> readings.</summary>
    /// <exception cref="IOException">The server ended the connection before answering (an <see cref="OssuaryException"/>), or took fewer readings.</exception>
    public static async Task ConfirmAsync(IDuplexPipe transport, long sent, CancellationToken cancellationToken)
    {
        // A flush that finds the connection ended is not thrown here: the read below reports why
        // (the allow-list's refusal, a shutdown), or that the server ended it cleanly.
        transport.Output.Write(Encoding.ASCII.GetBytes(ReadingParser.SyncLine + "\n"));
        await transport.Output.FlushAsync(cancellationToken);

        PipeReader input = transport.Input;
        while (true)
        {
            ReadResult read = await input.ReadAsync(cancellationToken);
            ReadOnlySequence<byte> buffer = read.Buffer;
            if (ReadingParser.TryReadLine(ref buffer, out ReadOnlySequence<byte> line))
            {
                long taken = Parse(line);
                input.AdvanceTo(buffer.Start);
                if (taken != sent)
                {
                    throw new IOException($"The server stored {taken} of the {sent} reading(s) sent on this connection.");
                }

                return;
            }

            if (read.IsCompleted || buffer.Length > ReadingParser.MaxLineLength)
            {
                throw NotAcknowledged();
            }

            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static long Parse(ReadOnlySequence<byte> line)
    {
        ReadOnlySpan<byte> text = line.IsSingleSegment ? line.FirstSpan : line.ToArray();
        ReadOnlySpan<byte> prefix = "ok "u8;
        return text.StartsWith(prefix) && Utf8Parser.TryParse(text[prefix.Length..], out long taken, out int used) && used == text.Length - prefix.Length
            ? taken
            : throw new IOException($"The server answered the sync with '{Encoding.ASCII.GetString(text)}', not 'ok N'.");
    }

    private static OssuaryException NotAcknowledged() =>
        new(OssuaryErrorReason.ConnectionClosed, "The server closed the connection before acknowledging the readings: the last ones may not have reached it.");
}
