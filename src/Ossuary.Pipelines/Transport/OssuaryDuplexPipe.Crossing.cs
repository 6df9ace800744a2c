using System.Buffers;
using System.IO.Pipelines;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// A peer's failure that crossed our Disconnect: its Reset or Disconnect (error) had arrived before our
/// Disconnect went out, behind frames the application had no room for yet. Once our Disconnect has
/// closed the session, the session answers every packet with its own end (a clean one), so those
/// packets were never looked at, and the input ended cleanly though the peer had failed before it
/// could read what we sent last. A Reset that arrives after our Disconnect is the peer's answer to it
/// (the original's and ours) and says nothing of the kind, so only bytes read before it went count.
/// </summary>
public sealed partial class OssuaryDuplexPipe
{
    /// <summary>
    /// How many of the bytes the transport holds unconsumed arrived before our Disconnect went out,
    /// after one turn of the inbound loop: all of a read that returned before it, else what was left
    /// of them less what this turn consumed.
    /// </summary>
    private static long BytesBeforeGoodbye(long before, bool readBeforeGoodbye, long read, long left) =>
        readBeforeGoodbye ? left : Math.Max(0, before - (read - left));

    /// <summary>
    /// The peer's failure among the first <paramref name="before"/> bytes the transport holds (which
    /// arrived before our Disconnect went out), as the input reports one it reads: a Reset, or a
    /// Disconnect with the error flag; null if there is none, or a clean Disconnect comes first. A
    /// transport that fails before they can be read is a failure too (the peer's reset, say).
    /// The bytes are left in the transport.
    /// </summary>
    private OssuaryException? FailureBeforeGoodbye(PipeReader transport, long before, bool receivedData)
    {
        ReadResult read;
        try
        {
            if (before <= 0 || !transport.TryRead(out read))
            {
                return null;
            }
        }
        catch (Exception ex) when (!LocalFault.IsLocal(ex))
        {
            // The transport failed meanwhile (Kestrel's input fails with the peer's reset, and then gives
            // none of the bytes it held): whether the peer failed before our Disconnect can no longer be
            // seen, and the end is no clean one. Only the abort that our own clean close causes (once the
            // output is completed) is the end asked for, as it is for the inbound loop's read.
            return _closedByApplication && _outputCompletedByUs && ex is Microsoft.AspNetCore.Connections.ConnectionAbortedException ? null
                : new OssuaryException(OssuaryErrorReason.ConnectionFailed,
                    $"The transport failed before what the peer sent ahead of this side's Disconnect could be read; the peer may have failed before it read the last bytes sent: {ex.Message}", ex);
        }

        try
        {
            ReadOnlySequence<byte> packets = read.Buffer.Slice(0, Math.Min(before, read.Buffer.Length));
            while (PacketHeader.TryRead(packets, out PacketHeader header) && header.BodyLength <= PacketHeader.MaxBodyLength && packets.Length >= header.PacketLength)
            {
                if (header.Type == PacketType.Reset)
                {
                    return Ended(OssuaryReceiveResult.Reset(OssuaryErrorReason.ConnectionReset), receivedData);
                }

                if (header.Type == PacketType.Disconnect)
                {
                    // Body: len · error flag · reserved; one shorter than its 4 bytes is a failure, as the session has it.
                    ReadOnlySequence<byte> body = packets.Slice(PacketHeader.Size, header.BodyLength);
                    bool error = body.Length < OssuarySession.ControlBodySize || body.Slice(2, 1).FirstSpan[0] != 0;
                    return error ? Ended(OssuaryReceiveResult.Closed(OssuaryErrorReason.ConnectionFailed), receivedData) : null;
                }

                packets = packets.Slice(header.PacketLength);
            }

            return null;
        }
        finally
        {
            transport.AdvanceTo(read.Buffer.Start);
        }
    }
}
