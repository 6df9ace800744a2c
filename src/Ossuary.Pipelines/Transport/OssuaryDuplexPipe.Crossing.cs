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
/// The peer's data frames left unread so, before our Disconnect or after it, are a loss the input reports too.
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
    /// What the application must learn of what the peer sent around our Disconnect, which ended the
    /// input: the peer's failure among the first <paramref name="before"/> bytes the transport holds
    /// (which arrived before our Disconnect went out), as the input reports one it reads: a Reset, or a
    /// Disconnect with the error flag. Else, if the peer's data frames came (ones the application had no
    /// room for yet, or ones the peer sent before our Disconnect reached it), that their bytes were never
    /// delivered: the protocol has no half-close, and an input that ended cleanly told the application it
    /// had all the peer sent. Null if there is neither, or the peer's clean Disconnect came first.
    /// </summary>
    /// <remarks>
    /// For an application still reading, this reads on until the peer's answer to our Disconnect (its
    /// Reset, or its own end), the transport's end, or 5 s: frames the peer sent before it read our
    /// Disconnect are still on their way. For one that has stopped reading (or a connection being
    /// disposed), only what the transport holds now is looked at, for the peer's failure: the frames it
    /// left unread are its own choice, and nobody reads the input to learn of them; those bytes are left in the transport.
    /// What is read on is consumed.
    /// </remarks>
    private async ValueTask<OssuaryException?> FailureAtGoodbyeAsync(PipeReader transport, long before, bool receivedData)
    {
        bool readOn = _closedByApplication && !_disposing && !_input.ReaderCompleted;
        using CancellationTokenSource? deadline = readOn ? new CancellationTokenSource(_closeWait) : null;
        using CancellationTokenRegistration cut = deadline?.Token.UnsafeRegister(static state => ((PipeReader)state!).CancelPendingRead(), transport) ?? default;
        long offset = 0; // of the bytes held at the start, how many are consumed
        long undelivered = 0;
        int frames = 0;
        while (true)
        {
            ReadResult read;
            try
            {
                if (!readOn)
                {
                    if (!transport.TryRead(out read))
                    {
                        return DataNotDelivered(undelivered, frames);
                    }
                }
                else
                {
                    read = await transport.ReadAsync().ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (!LocalFault.IsLocal(ex))
            {
                return TransportEndAtGoodbye(ex, offset < before) ?? DataNotDelivered(undelivered, frames);
            }
            catch (Exception ex)
            {
                // Not the peer's doing (a bug, say): loud, as the inbound loop's own read reports it.
                _telemetry.ReportLocalFault(ex);
                return new OssuaryException(OssuaryErrorReason.ConnectionFailed, $"The Ossuary connection failed on this side: {ex.GetType().Name}: {ex.Message}", ex);
            }

            ReadOnlySequence<byte> packets = read.Buffer;
            while (PacketHeader.TryRead(packets, out PacketHeader header) && header.BodyLength <= PacketHeader.MaxBodyLength && packets.Length >= header.PacketLength)
            {
                if (header.Type is PacketType.Reset or PacketType.Disconnect)
                {
                    // After our Disconnect, the peer's end is its answer to it, and nothing of its follows.
                    OssuaryException? failed = offset < before ? PeersEndBeforeGoodbye(header, packets, receivedData) : null;
                    transport.AdvanceTo(readOn ? packets.Slice(header.PacketLength).Start : read.Buffer.Start);
                    return failed ?? DataNotDelivered(undelivered, frames);
                }

                // Counted only for an application still reading: one that stopped (or disposed the connection) left them unread itself.
                if (readOn && header.Type == PacketType.EncryptedData && header.BodyLength > EncryptedBlob.Overhead)
                {
                    undelivered += header.BodyLength - EncryptedBlob.Overhead;
                    frames++;
                }

                offset += header.PacketLength;
                packets = packets.Slice(header.PacketLength);
            }

            // Left in the transport when only looked at: bytes of the peer's unread there are what tells the
            // linger that closing the socket now could reset it (see LingerAsync).
            transport.AdvanceTo(readOn ? packets.Start : read.Buffer.Start, readOn ? read.Buffer.End : read.Buffer.Start);

            // A cancelled read that is neither the deadline's nor disposal's (the outbound loop's wake-up as it
            // leaves the output to this loop, a handshake timer's late one) is read past.
            if (!readOn || read.IsCompleted || (read.IsCanceled && (deadline!.IsCancellationRequested || _disposing || _lingerCut)))
            {
                return DataNotDelivered(undelivered, frames);
            }
        }
    }

    /// <summary>
    /// A transport that failed while the peer's bytes around our Disconnect were read, as the inbound loop's
    /// read takes it: a reset or an abort under our goodbye is no clean end; the abort our own clean close
    /// causes (once the output is completed) is. Null for an end that says nothing of the kind.
    /// </summary>
    private OssuaryException? TransportEndAtGoodbye(Exception ex, bool unreadBeforeGoodbye)
    {
        if (IsPeerReset(ex))
        {
            return ResetAfterGoodbye(ex);
        }

        if (_closedByApplication && _outputCompletedByUs && ex is Microsoft.AspNetCore.Connections.ConnectionAbortedException)
        {
            return null;
        }

        if (_closedByApplication && !_outputCompletedByUs)
        {
            return EndedUnderGoodbye(ex);
        }

        // Kestrel's input fails with the peer's reset, and then gives none of the bytes it held: whether the
        // peer failed before our Disconnect can no longer be seen, and the end is no clean one.
        return unreadBeforeGoodbye ? new OssuaryException(OssuaryErrorReason.ConnectionFailed,
            $"The transport failed before what the peer sent ahead of this side's Disconnect could be read; the peer may have failed before it read the last bytes sent: {ex.Message}", ex)
            : null;
    }

    /// <summary>The peer's Reset or Disconnect that arrived before our Disconnect went out, as the input reports it: null for a clean Disconnect.</summary>
    private OssuaryException? PeersEndBeforeGoodbye(PacketHeader header, in ReadOnlySequence<byte> packets, bool receivedData)
    {
        if (header.Type == PacketType.Reset)
        {
            return Ended(OssuaryReceiveResult.Reset(OssuaryErrorReason.ConnectionReset), receivedData);
        }

        return OssuarySession.IsErrorDisconnect(packets.Slice(PacketHeader.Size, header.BodyLength)) ? Ended(OssuaryReceiveResult.Closed(OssuaryErrorReason.ConnectionFailed), receivedData) : null;
    }

    /// <summary>
    /// Data frames of the peer's that our Disconnect left unread (their sizes as the headers give them,
    /// so unauthenticated: the count of what was lost, not bytes anyone could read).
    /// </summary>
    private static OssuaryException? DataNotDelivered(long bytes, int frames) => frames == 0 ? null
        : new OssuaryException(OssuaryErrorReason.ConnectionFailed,
            $"This side's Disconnect (its output completed) ended the connection with {bytes} byte(s) of the peer's data in {frames} frame(s) received and not delivered: "
            + "Ossuary has no half-close, so what the peer sends is read only until the output is completed. Read what you need before completing the output.");
}
