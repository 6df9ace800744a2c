using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A TCP proxy on 127.0.0.1 in front of one Ossuary server, for one client, that reads both directions packet
/// by packet (the 8-byte header: body length, message id, type). The client's Disconnect waits in the proxy
/// until <see cref="ReleaseGoodbye"/>: the server, which has not seen it, goes on sending, as over a long line
/// where a Disconnect and the peer's data cross. Counts the plaintext of the server's data packets.
/// </summary>
internal sealed class GoodbyeHoldingProxy : IAsyncDisposable
{
    private const ushort Disconnect = 0x10;
    private const ushort EncryptedData = 0x20;
    private const int DataOverhead = 20; // blob header (4) and tag (16)

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _goodbyeHeld = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _running;
    private readonly Lock _gate = new();
    private long _serverPlaintext;
    private (long Bytes, TaskCompletionSource Reached)? _awaited;

    public GoodbyeHoldingProxy(IPEndPoint target)
    {
        _target = target;
        _listener.Start();
        _running = RunAsync();
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>Completes once the client's Disconnect has reached the proxy (and is held there).</summary>
    public Task GoodbyeHeld => _goodbyeHeld.Task;

    /// <summary>Sends the held Disconnect on, and what the client sends after it.</summary>
    public void ReleaseGoodbye() => _release.TrySetResult();

    /// <summary>Completes once the server's data packets forwarded to the client carry at least <paramref name="bytes"/> of plaintext.</summary>
    public Task ServerSentAsync(long bytes)
    {
        lock (_gate)
        {
            if (_serverPlaintext >= bytes)
            {
                return Task.CompletedTask;
            }

            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _awaited = (bytes, reached);
            return reached.Task;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _stop.Cancel();
        _release.TrySetResult();
        await _running.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private async Task RunAsync()
    {
        using Socket client = await _listener.AcceptSocketAsync(_stop.Token);
        using var server = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await server.ConnectAsync(_target, _stop.Token);
        await using var toServer = new NetworkStream(server, ownsSocket: false);
        await using var toClient = new NetworkStream(client, ownsSocket: false);
        await Task.WhenAll(
            PumpAsync(toClient, toServer, server, fromClient: true),
            PumpAsync(toServer, toClient, client, fromClient: false));
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, Socket toSocket, bool fromClient)
    {
        byte[] packet = new byte[8 + ushort.MaxValue];
        try
        {
            while (true)
            {
                try
                {
                    await from.ReadExactlyAsync(packet.AsMemory(0, 8), _stop.Token);
                }
                catch (EndOfStreamException)
                {
                    toSocket.Shutdown(SocketShutdown.Send);
                    return;
                }

                ushort body = BinaryPrimitives.ReadUInt16BigEndian(packet);
                ushort type = BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(4));
                await from.ReadExactlyAsync(packet.AsMemory(8, body), _stop.Token);
                if (fromClient && type == Disconnect)
                {
                    _goodbyeHeld.TrySetResult();
                    await _release.Task.WaitAsync(_stop.Token);
                }

                await to.WriteAsync(packet.AsMemory(0, 8 + body), _stop.Token);
                if (!fromClient && type == EncryptedData)
                {
                    Counted(body - DataOverhead);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException or EndOfStreamException)
        {
            // One side went (a reset, the test's end): the other goes with it.
            toSocket.Close();
        }
    }

    private void Counted(long plaintext)
    {
        lock (_gate)
        {
            _serverPlaintext += plaintext;
            if (_awaited is { } awaited && _serverPlaintext >= awaited.Bytes)
            {
                _awaited = null;
                awaited.Reached.TrySetResult();
            }
        }
    }
}
