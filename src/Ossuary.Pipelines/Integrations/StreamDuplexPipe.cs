using System.IO.Pipelines;
using System.Net.Sockets;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>Pipes over a <see cref="Stream"/>: an <see cref="OssuaryStream"/>'s inner stream (a socket's <see cref="System.Net.Sockets.NetworkStream"/> or any other). The client's socket has its own, <see cref="SocketDuplexPipe"/>.</summary>
/// <param name="stream">The stream.</param>
/// <param name="leaveOpen">Whether <see cref="DisposeStreamAsync"/> leaves the stream to its owner.</param>
/// <param name="mayStopReading">Whether the stream's socket may stop receiving when the connection ends: the stream is
/// disposed then (by this pipe or by the <see cref="OssuaryStream"/> that owns it), so nobody reads it again.</param>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "CloseAsync disposes the linger's source, and each owner calls it; one it never reaches (a disposal racing the handshake) holds only its timer, which lets go once it fires.")]
internal sealed class StreamDuplexPipe(Stream stream, bool leaveOpen, bool mayStopReading) : IDuplexPipe, IReadStoppingTransport, IOwnerClosedTransport
{
    // Zero-byte reads: an idle connection waits for data before it rents its 64 KiB read buffer,
    // instead of holding one for as long as the peer is quiet.
    private static readonly StreamPipeReaderOptions ReaderOptions = new(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true, useZeroByteReads: true);

    // A 128 KiB segment holds a whole batch of sealed frames (an application that flushes faster
    // than the socket drains has up to 64 KiB queued), which then leaves in one socket write; a
    // 32 KiB segment held one full frame, so each frame was its own write.
    private static readonly StreamPipeWriterOptions WriterOptions = new(minimumBufferSize: 128 * 1024, leaveOpen: true);

    public PipeReader Input { get; } = PipeReader.Create(stream, ReaderOptions);

    public PipeWriter Output { get; } = PipeWriter.Create(stream, WriterOptions);

    // Set when disposal lingers (see TryStopReading): cancelled at the deadline, disposed by CloseAsync.
    private CancellationTokenSource? _linger;

    // The connection's telemetry, set with _linger: where CloseAsync reports a peer that resets during the wait.
    private ConnectionTelemetry? _lingerTelemetry;

    // The connection's whole wait, set with _linger: what CloseAsync says the peer was given.
    private TimeSpan _closeWait;

    private volatile bool _closedByOwner;

    /// <inheritdoc />
    public bool ClosedByOwner => _closedByOwner;

    /// <summary>
    /// The stream's owner is about to close it, whatever runs over it (an <see cref="OssuaryStream"/>
    /// disposed during its handshake): call before the stream is closed.
    /// </summary>
    public void MarkClosedByOwner() => _closedByOwner = true;

    /// <summary>
    /// A socket nobody reads after this connection stops receiving: on Linux a pending receive then
    /// returns 0 bytes, which ends the read as the peer's close would, where cancelling it throws
    /// (and catches) an exception inside the pipe reader, once a connection. Elsewhere (shutdown need
    /// not wake a pending receive there) and for a stream the caller goes on owning, false.
    /// </summary>
    /// <remarks>
    /// With <paramref name="lingerFor"/> positive (our Disconnect went out, nothing failed) and bytes
    /// from the peer waiting unread, or a peer behind with what we sent (Linux, <see cref="SocketQueues.PeerIsBehind"/>), the
    /// socket sends its end (FIN) after the Disconnect now and stops receiving only once the peer has
    /// closed its end or the time is up: a socket closed with bytes from the peer unread (a server
    /// still streaming to a client that is done), or receiving any once closed (a server answering
    /// what it reads), sends a reset, and the reset drops whatever of the last frames and the
    /// Disconnect this side's kernel still held, so the peer failed where this side reported a clean
    /// close. <see cref="CloseAsync"/> reads and discards until then, and logs a peer that resets
    /// the connection meanwhile, or has not closed its end when the time is up (the socket is closed
    /// under it), to <paramref name="telemetry"/> (event 5, Debug), as the input does.
    /// </remarks>
    public bool TryStopReading(TimeSpan lingerFor, TimeSpan closeWait, ConnectionTelemetry telemetry)
    {
        if (!mayStopReading || stream is not NetworkStream { Socket: var socket })
        {
            return false;
        }

        // Only with bytes from the peer waiting unread (it is still sending), or bytes of ours it is
        // behind with (an answer it sends meanwhile would meet a closed socket, and the reset would
        // drop them): a socket closed with neither ends with a FIN, and a peer that waits for the
        // application to close its end (as another OssuaryStream does) would hold every disposal for the whole time.
        if (lingerFor > TimeSpan.Zero && (SocketQueues.HasUnreadBytes(socket) || SocketQueues.PeerIsBehind(socket)) && Shutdown(socket, SocketShutdown.Send))
        {
            _lingerTelemetry = telemetry;
            _closeWait = closeWait;
            _linger = new CancellationTokenSource(lingerFor);
            if (!OperatingSystem.IsLinux())
            {
                return false; // the pending read is cancelled, and CloseAsync's reads with the deadline's token
            }

            // At the deadline the socket stops receiving, which ends the pending read or CloseAsync's.
            _linger.Token.UnsafeRegister(static state => Shutdown((Socket)state!, SocketShutdown.Receive), socket);
            return true;
        }

        return OperatingSystem.IsLinux() && Shutdown(socket, SocketShutdown.Receive);
    }

    /// <summary>
    /// Once the connection's loops are done: after a linger was asked for (<see cref="TryStopReading"/>),
    /// reads and discards what the peer still sends until it closes its end or the deadline passes; then
    /// disposes the stream unless it is left to its owner (who disposes it after this).
    /// </summary>
    public async ValueTask CloseAsync()
    {
        if (Interlocked.Exchange(ref _linger, null) is { } linger)
        {
            using (linger)
            {
                await DiscardUntilClosedAsync(stream.ReadAsync, _lingerTelemetry!, _closeWait, linger.Token).ConfigureAwait(false);
            }
        }

        await DisposeStreamAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// The linger's wait (see <see cref="CloseAsync"/>), over <paramref name="read"/>: the stream's reads, or
    /// <see cref="SocketDuplexPipe"/>'s receives, which fail as the stream's do (an <see cref="IOException"/> around the socket's error).
    /// </summary>
    internal static async Task DiscardUntilClosedAsync(Func<Memory<byte>, CancellationToken, ValueTask<int>> read, ConnectionTelemetry telemetry, TimeSpan closeWait, CancellationToken deadline)
    {
        // Ciphertext of a connection that is over: nothing secret, so an array of the shared pool.
        byte[] scratch = System.Buffers.ArrayPool<byte>.Shared.Rent(16 * 1024);
        bool timedOut;
        try
        {
            // On Linux the deadline ends a read by stopping the socket's receiving (no exception); elsewhere by cancelling it.
            CancellationToken token = OperatingSystem.IsLinux() ? CancellationToken.None : deadline;
            while (!deadline.IsCancellationRequested && await read(scratch, token).ConfigureAwait(false) > 0)
            {
            }

            // Linux's stopped receiving reads as an end too: only a read ended before the deadline was the peer's close.
            timedOut = deadline.IsCancellationRequested;
        }
        catch (Exception ex) when (OssuaryDuplexPipe.IsPeerReset(ex) && deadline.IsCancellationRequested)
        {
            // The deadline stopped the socket's receiving while the peer still sent: Linux answers such
            // bytes with a reset of its own (a socket that sent its FIN and stopped receiving), so this is the timeout's end.
            timedOut = true;
        }
        catch (Exception ex) when (OssuaryDuplexPipe.IsPeerReset(ex))
        {
            // Nothing more to wait for, but not the close waited for: a socket resets when it closes with
            // bytes unread, so the peer never read our last bytes and Disconnect (or it aborted). The
            // input had ended already and said nothing; the peer's doing, so at Debug, as the input reports it.
            OssuaryLog.ConnectionFailed(telemetry.Logger, telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed, OssuaryDuplexPipe.ResetAfterGoodbye(ex));
            return;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            timedOut = true;
        }
        catch (IOException ex)
        {
            // Nothing more to wait for, and our last bytes and Disconnect may not have been read: a socket error
            // that is not a reset (the kernel gave the connection up: a retransmission, keep-alive or user timeout).
            // The network's or the peer's doing, so at Debug, as the input reports it; it ended the wait in silence.
            OssuaryLog.ConnectionFailed(telemetry.Logger, telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed, OssuaryDuplexPipe.FailedAfterGoodbye(ex));
            return;
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
            return; // the stream's owner closed it: there is nothing more to wait for
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(scratch);
        }

        if (timedOut)
        {
            // The peer neither closed nor reset in its time, and the stream's disposal closes the socket under
            // it, which may reset what we sent last. Said as the output's own timeout says its drop: the peer's doing, at Debug.
            OssuaryLog.ConnectionFailed(telemetry.Logger, telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed, OssuaryDuplexPipe.StillSendingAfterGoodbye(closeWait));
        }
    }

    /// <inheritdoc />
    public Task LingerAfterRefusalAsync(TimeSpan closeWait, ConnectionTelemetry telemetry) =>
        mayStopReading ? LingerAfterRefusalAsync(stream, closeWait, telemetry) : Task.CompletedTask;

    /// <summary>
    /// After a server's Disconnect (error) that ended the handshake (a refusal, or a failure of ours), over
    /// a socket stream that its owner closes next: sends our end behind the Disconnect and reads and discards
    /// until the client closes its own, at most <paramref name="closeWait"/> (5 s unless a test shortened it), as <c>UseOssuary</c> does. The client's bytes (its
    /// ClientHandshake, or what a refused client, which counts itself established, sends at once) would
    /// otherwise wait unread as the socket closes, or arrive once it has, and the reset that sends can drop
    /// the Disconnect before the client reads it. A client told closes at once; one that has not closed its
    /// end by then is logged (event 5, Debug). Nothing else reads the stream: the handshake has ended.
    /// </summary>
    private static Task LingerAfterRefusalAsync(Stream stream, TimeSpan closeWait, ConnectionTelemetry telemetry) =>
        stream is NetworkStream { Socket: var socket } ? LingerAfterRefusalAsync(socket, stream.ReadAsync, closeWait, telemetry) : Task.CompletedTask;

    /// <summary>The refusal's wait (see <see cref="LingerAfterRefusalAsync(Stream, TimeSpan, ConnectionTelemetry)"/>) on <paramref name="socket"/>, over <paramref name="read"/> (as <see cref="DiscardUntilClosedAsync"/> has it).</summary>
    internal static async Task LingerAfterRefusalAsync(Socket socket, Func<Memory<byte>, CancellationToken, ValueTask<int>> read, TimeSpan closeWait, ConnectionTelemetry telemetry)
    {
        if (!Shutdown(socket, SocketShutdown.Send))
        {
            return;
        }

        // Ciphertext and handshake packets of a connection that is over: nothing secret, so an array of the shared pool.
        byte[] scratch = System.Buffers.ArrayPool<byte>.Shared.Rent(16 * 1024);
        using var deadline = new CancellationTokenSource(closeWait);
        try
        {
            while (await read(scratch, deadline.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            // The client's doing, so at Debug, as UseOssuary's refusal says it.
            OssuaryLog.ConnectionFailed(telemetry.Logger, telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed, OssuaryDuplexPipe.StillOpenAfterRefusal(closeWait));
        }
        catch (IOException ex)
        {
            // The client reset (or the kernel gave the connection up), and may not have read the Disconnect:
            // the peer's or the network's doing, so at Debug, as the established connection's wait says it.
            OssuaryLog.ConnectionFailed(telemetry.Logger, telemetry.ConnectionId, OssuaryErrorReason.ConnectionFailed, OssuaryDuplexPipe.EndOfWaitAfterGoodbye(ex));
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
            // The stream's owner closed it: nothing more to wait for.
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    internal static bool Shutdown(Socket socket, SocketShutdown how)
    {
        try
        {
            socket.Shutdown(how);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return false; // already closed or reset
        }
    }

    /// <summary>
    /// Shuts a socket stream down in both directions: a pending send fails whether or not the peer
    /// reads, and on Linux a pending receive ends (elsewhere disposal ends it, as <see cref="TryStopReading"/>
    /// explains). Not disposed here: the stream's owner still disposes it,
    /// and a stream disposed under the pipes' reads fails them with ObjectDisposedException, which
    /// reads as a bug of ours rather than an ended connection.
    /// </summary>
    public void Abort()
    {
        if (leaveOpen || stream is not NetworkStream { Socket: var socket })
        {
            return;
        }

        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed or reset: nothing left to stop.
        }
    }

    /// <summary>Disposes the stream unless it is left to its owner; <see cref="CloseAsync"/> for a connection that may linger.</summary>
    public async ValueTask DisposeStreamAsync()
    {
        if (!leaveOpen)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }
}
