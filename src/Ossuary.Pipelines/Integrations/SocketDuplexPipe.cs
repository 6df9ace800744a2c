using System.IO.Pipelines;
using System.Net.Sockets;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// The client's transport: pipes straight over the <see cref="Socket"/> it owns (see <see cref="SocketPipeReader"/>
/// and <see cref="SocketPipeWriter"/>), with the ends <see cref="StreamDuplexPipe"/> gives a socket stream:
/// a read stopped without an exception, the linger after our Disconnect, the refusal's wait, and an abort.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "CloseAsync disposes the linger's source and the socket, and the client connection calls it; the connect's failure path disposes the socket.")]
internal sealed class SocketDuplexPipe : IDuplexPipe, IReadStoppingTransport
{
    private readonly Socket _socket;
    private readonly SocketPipeReader _input;
    private readonly SocketPipeWriter _output;

    // Set when disposal lingers (see TryStopReading): cancelled at the deadline, disposed by CloseAsync.
    private CancellationTokenSource? _linger;

    // The connection's telemetry, set with _linger: where CloseAsync reports a peer that resets during the wait.
    private ConnectionTelemetry? _lingerTelemetry;

    // The connection's whole wait, set with _linger: what CloseAsync says the peer was given.
    private TimeSpan _closeWait;

    public SocketDuplexPipe(Socket socket)
    {
        _socket = socket;

        // Both ends lock this pipe, which nothing else sees: no lock object of their own an idle connection holds.
        _input = new SocketPipeReader(socket, this);
        _output = new SocketPipeWriter(socket, this);
    }

    public PipeReader Input => _input;

    public PipeWriter Output => _output;

    /// <summary>
    /// On Linux a socket that stops receiving ends a pending receive with 0 bytes, which ends the read as
    /// the peer's close would; elsewhere false (the read is cancelled). With <paramref name="lingerFor"/>
    /// positive and the peer still sending or behind with what we sent, the socket sends its end first and
    /// stops receiving only once the peer has closed its own or the time is up, as
    /// <see cref="StreamDuplexPipe.TryStopReading"/> explains; <see cref="CloseAsync"/> waits for that.
    /// </summary>
    public bool TryStopReading(TimeSpan lingerFor, TimeSpan closeWait, ConnectionTelemetry telemetry)
    {
        if (lingerFor > TimeSpan.Zero && (SocketQueues.HasUnreadBytes(_socket) || SocketQueues.PeerIsBehind(_socket)) && StreamDuplexPipe.Shutdown(_socket, SocketShutdown.Send))
        {
            _lingerTelemetry = telemetry;
            _closeWait = closeWait;
            _linger = new CancellationTokenSource(lingerFor);
            if (!OperatingSystem.IsLinux())
            {
                return false; // the pending read is cancelled, and CloseAsync's receives with the deadline's token
            }

            // At the deadline the socket stops receiving, which ends the pending read or CloseAsync's.
            _linger.Token.UnsafeRegister(static state => StreamDuplexPipe.Shutdown((Socket)state!, SocketShutdown.Receive), _socket);
            return true;
        }

        return OperatingSystem.IsLinux() && StreamDuplexPipe.Shutdown(_socket, SocketShutdown.Receive);
    }

    /// <summary>
    /// Once the connection's loops are done: after a linger was asked for (<see cref="TryStopReading"/>),
    /// receives and discards what the peer still sends until it closes its end or the deadline passes
    /// (as <see cref="StreamDuplexPipe.CloseAsync"/> does); then closes the socket.
    /// </summary>
    public async ValueTask CloseAsync()
    {
        if (Interlocked.Exchange(ref _linger, null) is { } linger)
        {
            using (linger)
            {
                await StreamDuplexPipe.DiscardUntilClosedAsync(ReceiveAsync, _lingerTelemetry!, _closeWait, linger.Token).ConfigureAwait(false);
            }
        }

        await CloseSocketAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Closes the socket as a socket stream's disposal did: gracefully (a FIN behind what the kernel
    /// still holds). A cancelled read or flush leaves its receive or send in flight, and on Unix a socket
    /// closed under one closes abortively instead, with a reset that drops what its kernel has not sent
    /// yet (our last frames and Disconnect among them) and shows the peer a reset where it saw an end. So a
    /// receive in flight is ended first (on Linux a socket that stops receiving ends it, with 0 bytes), and
    /// a send in flight is given the FIN (a socket shut down for sending is closed gracefully, its send failed).
    /// </summary>
    public async ValueTask CloseSocketAsync()
    {
        Task receiveEnded = _input.ReceiveEndedAsync();
        if (!receiveEnded.IsCompleted && OperatingSystem.IsLinux() && StreamDuplexPipe.Shutdown(_socket, SocketShutdown.Receive))
        {
            // It ends at once; bounded all the same, as the socket's close ends it anyway (abortively).
            await receiveEnded.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_output.Sending)
        {
            StreamDuplexPipe.Shutdown(_socket, SocketShutdown.Send);
        }

        _socket.Dispose();
    }

    /// <inheritdoc />
    public Task LingerAfterRefusalAsync(TimeSpan closeWait, ConnectionTelemetry telemetry) => StreamDuplexPipe.LingerAfterRefusalAsync(_socket, ReceiveAsync, closeWait, telemetry);

    /// <summary>
    /// Shuts the socket down in both directions: a pending send fails whether or not the peer reads, and
    /// on Linux a pending receive ends. Not closed here: <see cref="CloseAsync"/> closes it, once the loops are done.
    /// </summary>
    public void Abort()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed or reset: nothing left to stop.
        }
    }

    /// <summary>A receive that fails as a socket stream's read does: an <see cref="IOException"/> around the socket's error.</summary>
    private async ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            return await _socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException ex)
        {
            throw new IOException($"Unable to read data from the transport connection: {ex.Message}.", ex);
        }
    }
}
