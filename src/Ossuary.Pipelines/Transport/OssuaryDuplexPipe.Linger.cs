using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// The end of a connection over a transport that closes its socket as its output completes
/// (Kestrel's socket transport): the server's side of what <c>SocketDuplexPipe</c> does for a client.
/// </summary>
/// <remarks>
/// A socket closed with bytes of the peer's unread, or receiving bytes once closed, sends a reset, not
/// a FIN, and the reset drops whatever this side's kernel still held unsent: the last frames and the
/// Disconnect never reached a client that reads slowly, which saw a reset or a truncated stream where
/// this side reported a clean close. So after our Disconnect, while the peer is still sending or (on
/// Linux) is behind with our last frames, the transport's output is left open and its input
/// read and discarded until the peer closes its end, at most 5 s (and within what is left of
/// disposal's 5 s); only then is the output completed, and the socket closed. A connection whose peer
/// keeps up and is not sending costs nothing: the output is completed at once, as before.
/// </remarks>
public sealed partial class OssuaryDuplexPipe
{
    // The socket under a transport whose output's completion closes it; null for a transport that
    // has its own way to end (SocketDuplexPipe, StreamDuplexPipe) or shows no socket (a pipe in memory).
    private readonly Socket? _closingSocket;

    // Set by the outbound loop when it left the transport's output open after our Disconnect: the
    // inbound loop completes it once the peer has stopped sending (see LingerAsync).
    private volatile bool _outputCompletionDeferred;

    // Set by disposal, before it cancels the transport's read, once its 5 s are up: a cancellation
    // that ClosingNowCouldReset's TryRead consumes must still end the linger.
    private volatile bool _lingerCut;

    private static Socket? ClosingSocketOf(IDuplexPipe transport, ConnectionContext? connection) =>
        transport is IReadStoppingTransport ? null : connection?.Features.Get<IConnectionSocketFeature>()?.Socket;

    /// <summary>
    /// Whether the outbound loop, done, leaves the transport's output to the inbound loop: after a
    /// Disconnect that went out whole, over a transport that closes its socket with the output.
    /// The inbound loop is woken from its read, as the socket's close woke it before, and from a flush
    /// that waits for room in an application's full input: the socket's close waited for neither, and
    /// a handler that completed its output and waits for the connection's end would wait forever.
    /// </summary>
    private bool DeferOutputCompletion(bool outputFailed)
    {
        if (outputFailed || !_saidGoodbye || _closingSocket is null)
        {
            return false;
        }

        _outputCompletionDeferred = true;
        _transport.Input.CancelPendingRead();
        _input.CancelPendingFlush();
        return true;
    }

    /// <summary>Ends the linger now (disposal's time is up): the read it waits in returns cancelled.</summary>
    private void CutLinger()
    {
        _lingerCut = true;
        _transport.Input.CancelPendingRead();
    }

    /// <summary>
    /// Once the inbound loop is done: if the peer is still sending, reads and discards until it closes
    /// its end or 5 s pass (disposal cuts it shorter, see <see cref="DisposeAsync"/>), then completes the
    /// output the outbound loop left open.
    /// </summary>
    private async Task LingerAsync(PipeReader transport)
    {
        try
        {
            // Disposal's time may be up before the linger starts: the socket closes under the peer all the same.
            if (ClosingNowCouldReset(transport, _closingSocket!)
                && (_lingerCut || !await DiscardUntilThePeerClosesAsync(transport, _closeWait, stopOnAnyCancel: true).ConfigureAwait(false)))
            {
                // The peer neither closed nor reset in its time: the close now may reset what we sent last. The
                // application was told nothing; the peer's doing, so at Debug, as the output's own timeout says its drop.
                OssuaryLog.ConnectionFailed(_telemetry.Logger, _telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed, StillSendingAfterGoodbye(_closeWait));
            }
            else if (SocketQueues.WasTornDown(_closingSocket!))
            {
                // The input's end was no close of the peer's: the kernel gave the connection up (Kestrel reads that
                // as a FIN) with our last frames perhaps unsent. It ended the wait in silence; the peer's or the
                // network's doing, so at Debug, as a socket error during the wait is said.
                OssuaryLog.ConnectionFailed(_telemetry.Logger, _telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed, TornDownAfterGoodbye());
            }
        }
        catch (Exception ex) when (IsPeerReset(ex))
        {
            // Nothing more to wait for, but not the close waited for: a socket resets when it closes with
            // bytes unread, so the peer never read our last frames and Disconnect (or it aborted). The
            // application was told nothing either way; the peer's doing, so at Debug, as the input would report it.
            OssuaryLog.ConnectionFailed(_telemetry.Logger, _telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed, ResetAfterGoodbye(ex));
        }
        catch (Exception ex) when (!LocalFault.IsLocal(ex))
        {
            // Nothing more to wait for, and the socket closes under what the peer had not read yet. A socket
            // error (Kestrel passes on what is not a reset: the peer's keep-alive or retransmission timed out) is
            // the network's or the peer's doing; an abort (Kestrel's, as the host stops) is the host's, no fault
            // of ours either. So at Debug, as the input reports both; it ended the wait in silence.
            OssuaryLog.ConnectionFailed(_telemetry.Logger, _telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed, FailedAfterGoodbye(ex));
        }
        catch (Exception ex)
        {
            ReportTransportCompletionFailure(ex);
        }

        try
        {
            await _transport.Output.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            ReportTransportCompletionFailure(ex);
        }
    }

    /// <summary>What a connection the kernel tore down after our Disconnect means, its input ended as if the peer had closed.</summary>
    internal static OssuaryException TornDownAfterGoodbye() => new(OssuaryErrorReason.ConnectionFailed,
        "The connection was torn down (the system gave it up: a retransmission, window-probe or user timeout, or it was aborted) after this side's Disconnect, "
        + "though its input ended as if the peer had closed: the last bytes sent and the Disconnect may not have reached its application.");

    /// <summary>What ended a wait for the peer's close after our Disconnect, not the close: a reset, or any other failure (or abort) of the transport.</summary>
    internal static OssuaryException EndOfWaitAfterGoodbye(Exception failure) => IsPeerReset(failure) ? ResetAfterGoodbye(failure) : FailedAfterGoodbye(failure);

    /// <summary>What a transport that failed (or was aborted) while the linger waited means: our last bytes may not have been read.</summary>
    internal static OssuaryException FailedAfterGoodbye(Exception failure) => new(OssuaryErrorReason.ConnectionFailed,
        $"The transport failed while this side waited for the peer to close its end after its Disconnect ({failure.Message}): "
        + "the last bytes sent and the Disconnect may not have reached its application.", failure);

    /// <summary>
    /// Bytes of the peer's wait unread, in the transport or in the socket (discarding those the
    /// transport holds): closed now, the socket would send a reset. Or the peer is behind with what we
    /// sent (Linux, <see cref="SocketQueues.PeerIsBehind"/>): anything it sends before it has read our
    /// Disconnect would meet a closed socket and draw the same reset, which drops those bytes.
    /// </summary>
    private static bool ClosingNowCouldReset(PipeReader transport, Socket socket)
    {
        bool unread = false;
        if (transport.TryRead(out ReadResult read))
        {
            transport.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                return false; // the peer has closed its end: nothing of its waits in the socket
            }

            unread = !read.Buffer.IsEmpty;
        }

        return unread || SocketQueues.HasUnreadBytes(socket) || SocketQueues.PeerIsBehind(socket);
    }

    /// <summary>
    /// Reads and discards until the peer closes its end or <paramref name="wait"/> passes (5 s unless a test shortened it). A cancelled read ends it too when
    /// <paramref name="stopOnAnyCancel"/> (disposal cuts the linger that way); otherwise only the
    /// deadline's does, and a stray one (the handshake's step timer firing late) is read past.
    /// </summary>
    /// <returns>True once the peer has closed its end; false when the wait was cut or ran out first.</returns>
    private static async Task<bool> DiscardUntilThePeerClosesAsync(PipeReader transport, TimeSpan wait, bool stopOnAnyCancel)
    {
        using var deadline = new CancellationTokenSource(wait);
        using CancellationTokenRegistration cut = deadline.Token.UnsafeRegister(static state => ((PipeReader)state!).CancelPendingRead(), transport);
        while (true)
        {
            ReadResult read = await transport.ReadAsync().ConfigureAwait(false);
            transport.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                return true; // the peer closed its end
            }

            if (read.IsCanceled && (stopOnAnyCancel || deadline.IsCancellationRequested))
            {
                return false; // the time is up
            }
        }
    }

    /// <summary>
    /// A server that failed before its handshake began (its <see cref="OssuaryServerOptions.IdentitySelector"/>
    /// gave it no key; logged at Error already): the client is told with Disconnect (error), which it reports
    /// as <see cref="OssuaryErrorReason.ConnectionFailed"/> (the original's client too), where it saw the
    /// socket close mid-handshake (Truncated) or reset, as if the network had failed. Over a transport that
    /// closes its socket as it ends, what the client sends is then read and discarded until it closes its
    /// end, at most 5 s: its ClientHandshake waits unread or is still on its way, and a socket closed with
    /// bytes of the peer's unread, or receiving them once closed, sends a reset, which can drop the
    /// Disconnect (the wait <see cref="LingerAfterRefusalAsync"/> does after a refusal). A client told answers and
    /// closes at once; one that has not closed its end when the time is up is logged (event 5, Debug).
    /// </summary>
    internal static async Task RefuseWithoutHandshakeAsync(IDuplexPipe transport, ConnectionContext? connection, ConnectionTelemetry telemetry, TimeSpan closeWait)
    {
        try
        {
            OssuarySession.WriteErrorDisconnect(transport.Output);
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            if ((await transport.Output.FlushAsync(bound.Token).ConfigureAwait(false)).IsCompleted)
            {
                return; // the connection has ended already: nobody left to tell
            }
        }
        catch (Exception ex) when (!LocalFault.IsLocal(ex))
        {
            return; // the client went away, or reads nothing: nothing more to tell it
        }

        await LingerAfterRefusalAsync(transport, connection, telemetry, closeWait).ConfigureAwait(false);
    }

    /// <summary>
    /// A server's handshake that ended with its Disconnect (error) to a client that counts itself
    /// established (its ClientAuthentication had come: a refusal, or a failure of ours after it), over
    /// a transport that closes its socket as it ends: the client may be sending already, and a socket
    /// closed with its bytes unread, or receiving them once closed, sends a reset, which on many
    /// stacks drops the Disconnect before the client reads it (it saw "connection reset", not why).
    /// So what the client sends is read and discarded until it closes its end, at most 5 s, before the
    /// caller lets the socket close (a client that has not closed it by then is logged, event 5 at Debug).
    /// Unlike the established connection's linger, this waits whether or not the client's bytes are there
    /// yet: a client told of its refusal closes at once, so the wait costs it a round trip, and bytes it
    /// sent just after a look that found none drew the reset all the same.
    /// </summary>
    private static async Task LingerAfterRefusalAsync(IDuplexPipe transport, ConnectionContext? connection, ConnectionTelemetry telemetry, TimeSpan closeWait)
    {
        if (transport is IReadStoppingTransport stream)
        {
            // A socket stream (an OssuaryStream's) that its owner closes once the handshake has thrown: the same wait, on the stream.
            await stream.LingerAfterRefusalAsync(closeWait, telemetry).ConfigureAwait(false);
            return;
        }

        if (ClosingSocketOf(transport, connection) is null)
        {
            return;
        }

        try
        {
            // Whether or not its bytes are here yet: ones that arrive just after a look found none meet the closed socket all the same.
            if (!await DiscardUntilThePeerClosesAsync(transport.Input, closeWait, stopOnAnyCancel: false).ConfigureAwait(false))
            {
                // The client's doing, so at Debug, as the established connection's linger says it.
                OssuaryLog.ConnectionFailed(telemetry.Logger, telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed, StillOpenAfterRefusal(closeWait));
            }
        }
        catch (Exception ex) when (!LocalFault.IsLocal(ex))
        {
            // The client reset or the connection was aborted (the host stopping), and the client may not have read
            // the Disconnect: not our doing, so at Debug, as the established connection's linger says it.
            OssuaryLog.ConnectionFailed(telemetry.Logger, telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed, EndOfWaitAfterGoodbye(ex));
        }
        catch (Exception ex)
        {
            telemetry.ReportLocalFault(ex);
        }
    }

    /// <summary>
    /// What closing the socket at the end of a refusal's wait means, the client not having closed its end:
    /// a client still sending then meets a closed socket, and the reset that follows may drop the
    /// Disconnect (error) before its application reads it (it sees "connection reset", not a refusal).
    /// </summary>
    internal static OssuaryException StillOpenAfterRefusal(TimeSpan waited) => new(OssuaryErrorReason.ConnectionFailed,
        $"The client had not closed its end {waited.TotalSeconds:0.###} s after this side's Disconnect (error), which ended its handshake: "
        + "the socket was closed under it, which resets the connection if it was still sending, so the Disconnect may not have reached its application.");
}
