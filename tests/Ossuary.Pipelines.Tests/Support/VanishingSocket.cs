using System.IO.Pipelines;
using System.Net.Sockets;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// One end's transport over a real socket, with the test in the middle of what that end sends:
/// every outgoing packet passes through a <see cref="PacketRelay.PacketHandler"/>, and as soon as
/// the handler returns false the socket is closed, the way a peer that vanishes closes it —
/// gracefully (FIN) or abortively (RST). What arrives from the socket is passed on untouched.
/// </summary>
internal sealed class VanishingSocket : IAsyncDisposable
{
    private static readonly PipeOptions Options = new(useSynchronizationContext: false);

    private readonly Socket _socket;
    private readonly bool _abortive;
    private readonly Pipe _outgoing = new(Options);
    private readonly Pipe _incoming = new(Options);
    private readonly TaskCompletionSource _vanished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _closed;

    /// <param name="socket">A connected socket; closed by this object.</param>
    /// <param name="onPacket">Sees each packet this end sends; write what should leave, flush, and return false to vanish.</param>
    /// <param name="abortive">Vanish with a reset (linger 0) instead of an orderly close.</param>
    public VanishingSocket(Socket socket, PacketRelay.PacketHandler onPacket, bool abortive = false)
    {
        _socket = socket;
        _socket.NoDelay = true; // as Kestrel's and OssuaryClient's sockets: Nagle must not hold the last packet back
        _abortive = abortive;
        Transport = new DuplexPipe(_incoming.Reader, _outgoing.Writer);
        Relays = Task.WhenAll(SendAsync(onPacket), ReceiveAsync());
    }

    /// <summary>The transport to give this end's Ossuary pipe.</summary>
    public IDuplexPipe Transport { get; }

    /// <summary>Completes once the socket has been closed.</summary>
    public Task Vanished => _vanished.Task;

    /// <summary>Completes once both relays have stopped.</summary>
    public Task Relays { get; }

    /// <summary>Closes the socket now (once).</summary>
    public void Vanish()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 1)
        {
            return;
        }

        try
        {
            if (_abortive)
            {
                _socket.LingerState = new LingerOption(true, 0);
            }
            else
            {
                _socket.Shutdown(SocketShutdown.Both);
            }
        }
        catch (SocketException)
        {
            // The other side went first; closing is all that is left.
        }

        _socket.Dispose();
        _vanished.TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        Vanish();

        // The send relay waits for this end's next packet; if this end never ended its output, end it here.
        await _outgoing.Writer.CompleteAsync();
        await Relays.Within();
    }

    private async Task SendAsync(PacketRelay.PacketHandler onPacket)
    {
        await using var stream = new NetworkStream(_socket, ownsSocket: false);
        PipeWriter toSocket = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
        try
        {
            await PacketRelay.ForwardAsync(_outgoing.Reader, toSocket, onPacket);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            // The other side closed first.
        }
        finally
        {
            Vanish();
        }
    }

    private async Task ReceiveAsync()
    {
        PipeWriter toLocal = _incoming.Writer;
        Exception? failure = null;
        try
        {
            while (true)
            {
                int received = await _socket.ReceiveAsync(toLocal.GetMemory(4096), SocketFlags.None);
                if (received == 0)
                {
                    break;
                }

                toLocal.Advance(received);
                if ((await toLocal.FlushAsync()).IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            failure = ex; // a reset from the other side, or our own close
        }

        await toLocal.CompleteAsync(failure);
    }
}
