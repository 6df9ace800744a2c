using System.Buffers;
using System.IO.Pipelines;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Transport;

public sealed partial class OssuaryDuplexPipe
{
    /// <summary>
    /// Decrypted bytes handed to the application before a flush: one full frame at most, so the
    /// application pipe never holds more than one frame beyond its pause threshold.
    /// </summary>
    private const long InboundFlushThreshold = OssuarySession.MaxPlaintextLength;

    /// <summary>
    /// Transport → application. Each frame is opened straight into the application pipe's memory;
    /// the flush after a batch is where backpressure from a slow reader reaches the transport.
    /// </summary>
    private async Task RunInboundAsync()
    {
        PipeReader transport = _transport.Input;
        PlaintextInput application = _input;
        Exception? failure = null;
        bool receivedData = false;
        bool ours = false;

        // Whether the connection ended (true unless the application only stopped reading, or disposal stopped this loop).
        bool sessionEnded = true;

        // Set when our Disconnect ended the input; and how many unconsumed bytes arrived before it went (see the Crossing part).
        bool endedByGoodbye = false;
        long beforeGoodbye = 0;
        int wanted = PacketHeader.Size;
        try
        {
            while (true)
            {
                ReadResult read;
                try
                {
                    read = await transport.ReadAtLeastAsync(wanted).ConfigureAwait(false);
                }
                catch (Exception ex) when (_closedByApplication && IsPeerReset(ex))
                {
                    // Not the end we asked for: a peer's socket resets when it closes with bytes unread, so
                    // it never read what we sent last (our Disconnect among them), or it aborted. Taken
                    // for the clean end below, the application was told its goodbye went through.
                    throw ResetAfterGoodbye(ex);
                }
                catch (Exception ex) when (_closedByApplication && !_outputCompletedByUs && !LocalFault.IsLocal(ex))
                {
                    // Not our end either: the transport's output, which holds our last bytes and Disconnect,
                    // was still open (its flush waiting for a slow peer, or left open for the peer's close),
                    // and the host aborted the connection under it (Kestrel's ConnectionAbortedException as
                    // it shuts down). Taken for the end below, the application was told they went through.
                    throw EndedUnderGoodbye(ex);
                }
                catch (Exception) when (_closedByApplication)
                {
                    // Our Disconnect ended the connection, and the transport ended the input with the
                    // output we completed: Kestrel aborts it (ConnectionAbortedException), a stream the
                    // transport owns is disposed under the waiting read. Either is the end we asked for.
                    break;
                }

                // Read after the read returned: while our Disconnect has not gone, all it returned came before it.
                bool readBeforeGoodbye = !_saidGoodbye;
                ReadOnlySequence<byte> buffer = read.Buffer;
                SequencePosition consumed = buffer.Start;
                OssuaryReceiveResult result;
                while (true)
                {
                    lock (SessionLock)
                    {
                        result = _session.Receive(buffer, application.Writer, out consumed, out _);
                    }

                    if (result.Status != OssuaryReceiveStatus.Data)
                    {
                        break;
                    }

                    receivedData = true;
                    _telemetry.Metrics.FrameReceived(result.PlaintextLength, _telemetry.Logger);
                    buffer = buffer.Slice(consumed);
                    if (application.UnflushedBytes >= InboundFlushThreshold)
                    {
                        break;
                    }
                }

                // Nothing is marked examined: the next read waits for the whole of the next packet
                // (ReadAtLeastAsync counts from the examined position), so this loop wakes once per
                // packet rather than once per transport read (Kestrel's socket transport reads at most 4 KiB).
                wanted = BytesForNextPacket(buffer.Slice(consumed));
                bool partialPacket = !buffer.IsEmpty; // read now: after AdvanceTo the buffer's segments may be reused
                beforeGoodbye = BytesBeforeGoodbye(beforeGoodbye, readBeforeGoodbye, read.Buffer.Length, read.Buffer.Slice(consumed).Length);

                // The read's two flags, not the read: a ReadResult kept across the flush below is 32 B more in
                // this loop's state machine, which every connection holds for as long as it lives.
                bool readCanceled = read.IsCanceled;
                bool readCompleted = read.IsCompleted;
                transport.AdvanceTo(consumed);
                FlushResult flushed;
                try
                {
                    flushed = await application.FlushAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (ReferenceEquals(ex, application.CompletedWith))
                {
                    // The application completed its input with an exception: the pipe throws it to this
                    // writer. It failed, and says so itself: the connection ends as for Output.Complete(exception),
                    // the peer told with Disconnect (error), logged at Debug, not as a fault of this library.
                    failure = new OssuaryException(OssuaryErrorReason.ConnectionFailed,
                        $"This side ended the Ossuary connection: its application completed the input with {ex.GetType().Name}: {ex.Message}", ex);
                    break;
                }

                if (result.Status is OssuaryReceiveStatus.Reset or OssuaryReceiveStatus.Closed)
                {
                    failure = Ended(result, receivedData);

                    // Our Disconnect closed the session (the peer's own Disconnect or Reset closes it first, and then none is sent).
                    endedByGoodbye = failure is null && _saidGoodbye;
                    break;
                }

                if (flushed.IsCompleted || ((readCanceled || flushed.IsCanceled) && _disposing))
                {
                    sessionEnded = false;
                    break; // the application stopped reading, or we are being disposed
                }

                if ((readCanceled || flushed.IsCanceled) && _outputCompletionDeferred)
                {
                    endedByGoodbye = true;
                    break; // our Disconnect ended the connection, and the transport waits for this loop (see LingerAsync)
                }

                if (readCompleted && result.Status == OssuaryReceiveStatus.NeedMoreData)
                {
                    failure = new OssuaryException(OssuaryErrorReason.Truncated, partialPacket
                        ? "The transport ended in the middle of an Ossuary packet."
                        : "The transport ended without an Ossuary Disconnect.");
                    break;
                }
            }
        }
        catch (Exception ex) when (LocalFault.IsLocal(ex))
        {
            // Not the peer's doing (a bug, say): loud, and the peer is told below with Disconnect (error).
            _telemetry.ReportLocalFault(ex);
            ours = true;
            failure = new OssuaryException(OssuaryErrorReason.ConnectionFailed, $"The Ossuary connection failed on this side: {ex.GetType().Name}: {ex.Message}", ex);
        }
        catch (Exception ex)
        {
            failure = ex as OssuaryException ?? new OssuaryException(OssuaryErrorReason.ConnectionFailed, $"The transport failed: {ex.Message}", ex);
        }

        try
        {
            if (endedByGoodbye)
            {
                // The peer may have failed before our Disconnect reached it, or sent data that no one will read:
                // said so, not a clean end. Nor is
                // our own Disconnect (error): the session's end reports the application's failure (below)
                // when the loop reads on, and the deferral break, which reads nothing more, must do the same.
                failure = await FailureAtGoodbyeAsync(transport, beforeGoodbye, receivedData).ConfigureAwait(false)
                    ?? (_applicationFailure is not null ? new OssuaryException(OssuaryErrorReason.ConnectionFailed) : null);
            }

            if (!ours && failure is not null && _applicationFailure is { } crash)
            {
                // Our own Disconnect (error) ended the session: the peer's answer or the transport's end
                // that followed is no failure of the peer's (nor, for a client, a refusal of its key).
                failure = new OssuaryException(OssuaryErrorReason.ConnectionFailed, ReferenceEquals(crash, _abortReason)
                    ? $"This side aborted the Ossuary connection: {crash.Message}"
                    : $"This side ended the Ossuary connection: its application completed the output with {crash.GetType().Name}: {crash.Message}", crash);
            }

            // Recorded before anything that takes time (the log line, a slow logger's) or lets a write see the
            // end: the session is over, and the outbound loop, woken by a flush, ends and reports that
            // flush through ClosedException, which without this said ConnectionClosed, a clean close.
            _inputFailure = failure as OssuaryException;
            if (!ours && failure is OssuaryException { Reason: var reason })
            {
                OssuaryLog.ConnectionFailed(_telemetry.Logger, _telemetry.ConnectionId, reason, failure);
            }

            // Before the application's read can see the end: a write it makes then must learn that nothing
            // more is sent (a completed flush), not wait for the outbound loop to finish the farewell first.
            if (sessionEnded)
            {
                _output.EndConnection();

                // And a WhenSentAsync waiting for bytes the output had not sent yet: they never reach the peer now.
                Interlocked.Exchange(ref _sentSignal, null)?.TrySetResult();
            }

            // Parked, not thrown at the next read: that would come in place of the bytes flushed just
            // before (see PlaintextInput); the input reports it once the application has seen them.
            if (failure is not null)
            {
                application.Fail(failure);

                // A failed input fails the connection: stop taking the application's writes and tell
                // the peer (Disconnect with error), where the transport still allows it.
                lock (SessionLock)
                {
                    if (_session.IsEstablished)
                    {
                        _session.Disconnect(error: true);
                    }
                }
            }

            application.CompleteWriter();
            if (sessionEnded)
            {
                // Reads now see the end and writes return completed, though the output may stay stuck
                // on a peer that stopped reading until disposal: the connection is over for its user.
                SignalEndedForApplication();
            }

            // Whatever ended the input, a farewell may be due: the writer loop owns the transport writer.
            _output.CancelOutboundRead();

            // The transport's input is completed only once the output is done with the transport: a
            // transport over a stream it owns (PipeReader.Create's default) disposes the stream when its
            // reader completes, which took the farewell above with it, and every later write of an
            // application that had only stopped reading. (How the output ended is the outbound loop's to report.)
            await _outbound.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

            // The output left its transport's failure (a stream's write that threw: the peer reset) to the
            // input, which fails with it once it reads the socket. One that read no more (its application left
            // it full, or stopped reading, and disposal ended the wait) or ended cleanly said nothing, and the
            // bytes written last were lost in silence. Not after the peer's own clean Disconnect: what we
            // wrote after it is discarded by the peer whatever the transport does.
            bool peerSaidGoodbye = sessionEnded && failure is null && !endedByGoodbye;
            if (failure is null && !peerSaidGoodbye && _outputFailureLeftToInput && _outboundFailure is { } lost)
            {
                OssuaryLog.ConnectionFailed(_telemetry.Logger, _telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed, lost as OssuaryException ?? OutputFailedUnderUs(lost));
            }

            if (_outputCompletionDeferred)
            {
                await LingerAsync(transport).ConfigureAwait(false);
            }

            try
            {
                await transport.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                ReportTransportCompletionFailure(ex);
            }
        }
        finally
        {
            // Else now, the output having ended before this loop (it waits for it above): both directions
            // have stopped. Or this loop failed on this side's own fault, and the connection is over all the same.
            SignalEndedForApplication();
        }
    }

    /// <summary>
    /// A transport end that throws as it is completed: the transport's failure (Debug, as any I/O
    /// failure of the connection) unless it is this side's own (Error, with its cause).
    /// </summary>
    private void ReportTransportCompletionFailure(Exception ex)
    {
        if (LocalFault.IsLocal(ex))
        {
            _telemetry.ReportLocalFault(ex);
        }
        else
        {
            OssuaryLog.ConnectionFailed(_telemetry.Logger, _telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed,
                new OssuaryException(OssuaryErrorReason.ConnectionFailed, $"The transport failed as it was completed: {ex.Message}", ex));
        }
    }

    /// <summary>A transport read that failed because the peer's socket reset the connection (Kestrel's or a socket stream's way of saying so).</summary>
    internal static bool IsPeerReset(Exception ex) => ex is Microsoft.AspNetCore.Connections.ConnectionResetException
        || ex is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionReset }
        || ex is IOException { InnerException: System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionReset } };

    /// <summary>What a peer's reset after our Disconnect means: the goodbye, and what went before it, may not have been read.</summary>
    internal static OssuaryException ResetAfterGoodbye(Exception reset) => new(OssuaryErrorReason.ConnectionFailed,
        $"The peer reset the connection after this side's Disconnect, which it may not have read: the last bytes sent may not have reached its application ({reset.Message}).", reset);

    /// <summary>
    /// What a transport that ended under our Disconnect means, before this side had completed its output:
    /// the last bytes sent and the Disconnect may still have been in it (an abort drops them).
    /// </summary>
    internal static OssuaryException EndedUnderGoodbye(Exception failure) => new(OssuaryErrorReason.ConnectionFailed,
        $"The transport ended under this side's Disconnect before its output was completed ({failure.Message}): "
        + "the last bytes sent and the Disconnect may not have reached the peer.", failure);

    /// <summary>
    /// What closing the socket at the end of the linger means, the peer not having closed its end: one closed
    /// with bytes of the peer's unread, or receiving any once closed, resets, which may drop our last bytes and
    /// the Disconnect. Said as the output's own 5 s timeout says its drop (the peer's doing, so at Debug).
    /// </summary>
    internal static OssuaryException StillSendingAfterGoodbye(TimeSpan waited) => new(OssuaryErrorReason.ConnectionFailed,
        $"The peer had not closed its end {waited.TotalSeconds:0.###} s after this side's Disconnect (it was still sending, or behind with what we sent): "
        + "the socket was closed under it, which resets the connection, so the last bytes sent and the Disconnect may not have reached its application.");

    // The wire carries no reason, and a refusal of this key and a server application that fails before it
    // writes look the same: the hint says both, the key first only while this client has sent nothing.
    private const string RefusedKeyHint =
        "The protocol carries no reason: a server that does not admit a client's key ends the connection so right after the handshake "
        + "(it logs InvalidKey), and so does a server whose application fails before it writes. If this happens right after connecting, "
        + "check that the server authorizes this client's key; else see the server's log.";

    // This client had written before the error came: a server application that failed on what it read
    // ends the connection so, and telling its operator to check the key sent them the wrong way.
    private const string FailedAfterOurDataHint =
        "This client had sent data before it: the server's application may have failed on what it read (the protocol carries no reason; "
        + "the server's log says why). If this happens right after connecting, the server may not accept this client's key.";

    // An anonymous client has no key to authorize: told to check its key, its operator looked for one that
    // does not exist, when what the server refuses is a client without one.
    private const string RefusedAnonymousHint =
        "This is how a server that does not admit anonymous clients refuses one, and this client has no identity "
        + "(the protocol carries no reason, so a server that failed for another reason looks the same): give it an identity the server authorizes.";

    /// <summary>The likely causes of a failure before any data, for this client: its having no key, its key, or what it sent.</summary>
    private string RefusedHint => Feature.LocalPublicKey.IsAnonymous ? RefusedAnonymousHint
        : _output.Written > 0 ? FailedAfterOurDataHint
        : RefusedKeyHint;

    /// <summary>
    /// How many bytes the transport must hold before the next packet can be opened: its header,
    /// then all of it. Whenever the session needs more data, this is more than the transport holds.
    /// </summary>
    private static int BytesForNextPacket(in ReadOnlySequence<byte> unconsumed)
    {
        if (!PacketHeader.TryRead(unconsumed, out PacketHeader header))
        {
            return PacketHeader.Size;
        }

        // An oversized length closes the session from the header alone: no need to wait for a body.
        return header.BodyLength > PacketHeader.MaxBodyLength ? PacketHeader.Size : header.PacketLength;
    }

    /// <summary>
    /// Turns a Reset or Closed result into the application's outcome. A Reset after the
    /// handshake fails the connection (bytes may have been in flight), with Disconnect (error).
    /// </summary>
    /// <remarks>
    /// A client that is failed before any data arrived keeps the wire's reason, but is told the
    /// likely cause: a server that does not admit the client's key answers its authentication with
    /// Disconnect (error), or (the original) a Reset. The protocol carries no reason, and a server
    /// application that fails before writing looks the same, so the reason stays what was received.
    /// </remarks>
    private OssuaryException? Ended(OssuaryReceiveResult result, bool receivedData)
    {
        bool refusedClient = !receivedData && _session.Role == OssuaryRole.Client;
        if (result.Status == OssuaryReceiveStatus.Reset)
        {
            lock (SessionLock)
            {
                _session.Disconnect(error: true);
            }

            return new OssuaryException(result.Reason, result.Reason switch
            {
                OssuaryErrorReason.ConnectionReset when refusedClient =>
                    "The server reset the Ossuary session before sending any data; a byte stream cannot resume. " + RefusedHint,
                OssuaryErrorReason.ConnectionReset => "The peer reset the Ossuary session after the handshake; a byte stream cannot resume.",
                _ => $"The peer broke the Ossuary protocol: {OssuaryException.DescribeReason(result.Reason)}",
            });
        }

        return result.Reason switch
        {
            OssuaryErrorReason.ConnectionClosed => null,
            OssuaryErrorReason.ConnectionFailed when refusedClient => new OssuaryException(result.Reason,
                "The server ended the Ossuary connection with an error before sending any data. " + RefusedHint),
            _ => new OssuaryException(result.Reason),
        };
    }
}
