using System.Net;
using System.Net.Sockets;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>A plain accept loop on 127.0.0.1 that hands every socket to its own task.</summary>
internal sealed class SocketListener : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly Func<Socket, CancellationToken, Task> _serve;
    private readonly Action<Exception> _onError;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _accepting;
    private int _running;

    public SocketListener(Func<Socket, CancellationToken, Task> serve, Action<Exception> onError)
    {
        _serve = serve;
        _onError = onError;
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(4096);
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        _accepting = AcceptAsync();
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>Server ends still running: accepted and not yet disposed.</summary>
    public int OpenConnections => Volatile.Read(ref _running);

    private async Task AcceptAsync()
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            socket.NoDelay = true;
            Interlocked.Increment(ref _running);
            _ = RunAsync(socket);
        }
    }

    private async Task RunAsync(Socket socket)
    {
        await Task.Yield(); // off the accept loop
        try
        {
            await _serve(socket, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            if (!_stopping.IsCancellationRequested)
            {
                _onError(ex);
            }
        }
        finally
        {
            socket.Dispose();
            Interlocked.Decrement(ref _running);
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Clients have closed by now; give their server ends a moment to notice before cancelling them.
        for (int i = 0; i < 500 && Volatile.Read(ref _running) > 0; i++)
        {
            await Task.Delay(10).ConfigureAwait(false);
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        await _accepting.ConfigureAwait(false);
    }
}
