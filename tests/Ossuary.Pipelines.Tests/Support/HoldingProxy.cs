using System.Net;
using System.Net.Sockets;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A TCP proxy on 127.0.0.1 in front of <c>target</c> that can hold back what the server sends
/// (<see cref="HoldReplies"/>) while the client's bytes still reach it: a request the server has
/// carried out whose answer comes only after the client stopped waiting for it, which is how an
/// acknowledgement gets lost. Released bytes arrive whole and in order.
/// </summary>
internal sealed class HoldingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _pumps = [];
    private readonly Task _accepting;
    private TaskCompletionSource _released = Released();
    private long _fromClients;

    public HoldingProxy(IPEndPoint target)
    {
        _target = target;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>The bytes read from the clients so far: once a client's write is counted here, it has left the client.</summary>
    public long BytesFromClients => Interlocked.Read(ref _fromClients);

    /// <summary>From now on, the server's bytes wait in the proxy until <see cref="ReleaseReplies"/>.</summary>
    public void HoldReplies() => Interlocked.Exchange(ref _released, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    /// <summary>Sends on what was held, and everything after it.</summary>
    public void ReleaseReplies() => Volatile.Read(ref _released).TrySetResult();

    /// <summary>
    /// Stops listening, then ends every connection: a client that reconnects at once is refused, as
    /// by a port nothing listens on. The listener goes first because a client reconnects as soon as
    /// its connection ends, and a listener still open took that attempt into its backlog and then
    /// reset it ("connection reset", not "refused"), as a killed server's dying listener can.
    /// </summary>
    public async Task DropAsync()
    {
        _listener.Stop();
        _stop.Cancel();
        ReleaseReplies();
        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Task[] pumps;
        lock (_pumps)
        {
            pumps = [.. _pumps];
        }

        await Task.WhenAll(pumps).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    public async ValueTask DisposeAsync()
    {
        await DropAsync();
        _stop.Dispose();
    }

    private static TaskCompletionSource Released()
    {
        var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        released.SetResult();
        return released;
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client = await _listener.AcceptSocketAsync(_stop.Token);
            var server = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await server.ConnectAsync(_target, _stop.Token);
            lock (_pumps)
            {
                _pumps.Add(PumpAsync(client, server, hold: false));
                _pumps.Add(PumpAsync(server, client, hold: true));
            }
        }
    }

    private async Task PumpAsync(Socket from, Socket to, bool hold)
    {
        byte[] buffer = new byte[16384];
        try
        {
            int read;
            while ((read = await from.ReceiveAsync(buffer, _stop.Token)) > 0)
            {
                if (hold)
                {
                    await Volatile.Read(ref _released).Task.WaitAsync(_stop.Token);
                }
                else
                {
                    Interlocked.Add(ref _fromClients, read);
                }

                await to.SendAsync(buffer.AsMemory(0, read), _stop.Token);
            }

            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The test is over, or one side went: the other goes with it.
        }
        finally
        {
            from.Dispose();
            to.Dispose();
        }
    }
}
