using System.IO.Pipelines;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>The three ways a peer ends a connection with a packet, and what an input reading to its end reports for each.</summary>
internal static class PeerEndings
{
    /// <summary>Each ending with what <see cref="ReadToTheEndAsync"/> is to report: the reason's name, or "clean end".</summary>
    public static TheoryData<string, string> All() => new()
    {
        { "reset", nameof(OssuaryErrorReason.ConnectionReset) },
        { "disconnect (error)", nameof(OssuaryErrorReason.ConnectionFailed) },
        { "disconnect", "clean end" },

        // Its body cut to 3 bytes, a zero where the flag goes: malformed, so never a clean end.
        { "disconnect cut short", nameof(OssuaryErrorReason.ConnectionFailed) },
    };

    /// <summary>The closing packet of <paramref name="ending"/> (one of <see cref="All"/>).</summary>
    public static byte[] Packet(string ending) => ending switch
    {
        "reset" => Wire.Control(Wire.Reset, error: false),
        "disconnect (error)" => Wire.Control(Wire.Disconnect, error: true),
        "disconnect cut short" => [.. Wire.Header(3, 0, Wire.Disconnect), 4, 0, 0],
        _ => Wire.Control(Wire.Disconnect, error: false),
    };

    /// <summary>Reads <paramref name="input"/> to its end: how it ended, and how many bytes came before.</summary>
    public static async Task<(string Outcome, int Received)> ReadToTheEndAsync(PipeReader input)
    {
        int received = 0;
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync().AsTask().Within();
                received += (int)read.Buffer.Length;
                input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    return ("clean end", received);
                }
            }
        }
        catch (OssuaryException ex)
        {
            return (ex.Reason.ToString(), received);
        }
    }
}
