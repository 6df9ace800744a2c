using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// Disposal gives up on a peer that stopped reading (after its bounded wait) instead of waiting
/// for it forever: a socket's send then never completes, and a server's middleware or a client's
/// <c>await using</c> must not hang on it.
/// </summary>
public class StalledPeerDisposalTests
{
    [Fact]
    public Task DisposingAClientWhoseServerStoppedReadingReturns() => Run(async () =>
    {
        using var keys = new MutualKeys();
        await using var stalled = await StalledServer.StartAsync(keys);
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        OssuaryClientOptions options = keys.ClientOptions().Shortened(); // the wait runs out whatever its length
        options.LoggerFactory = loggers;
        OssuaryClientConnection client = await OssuaryClient.ConnectAsync(stalled.EndPoint, options).Within();
        await stalled.AuthenticatedAsync().Within();

        // Far more than the sockets' buffers hold: the server never reads, so most of it can never leave.
        client.Transport.Output.Write(new byte[32 << 20]);

        await client.DisposeAsync().AsTask().Within();

        // Dropped, and said so: the peer's doing, at Debug (event 5).
        FakeLogRecord dropped = Assert.Single(logs.Collector.GetSnapshot(), r => r.Exception?.Message.Contains("were dropped", StringComparison.Ordinal) == true);
        Assert.Equal((5, LogLevel.Debug), (dropped.Id.Id, dropped.Level));
    });

    /// <summary>
    /// A second DisposeAsync while the first is still at work (its wait for a peer that stopped reading)
    /// returns only once the first has finished, as Kestrel's connections do: it returned at once, so code
    /// that disposed on two paths (a ConnectionClosed callback and its main flow, say) went on, or let its
    /// process exit, while the Disconnect and the last bytes had not yet gone.
    /// </summary>
    [Fact]
    public Task ASecondDisposalOfAClientReturnsOnlyOnceTheFirstHasFinished() => Run(async () =>
    {
        using var keys = new MutualKeys();
        await using var stalled = await StalledServer.StartAsync(keys);
        OssuaryClientConnection client = await OssuaryClient.ConnectAsync(stalled.EndPoint, keys.ClientOptions().Shortened()).Within();
        await stalled.AuthenticatedAsync().Within();
        client.Transport.Output.Write(new byte[32 << 20]); // can never all leave: the first disposal waits out its bound

        Task first = client.DisposeAsync().AsTask();
        await client.DisposeAsync().AsTask().Within();

        Assert.True(first.IsCompleted, "the second DisposeAsync returned while the first was still disposing");
        await first;
    });

    [Fact]
    public Task DisposingAStreamWhosePeerStoppedReadingReturns() => Run(async () =>
    {
        using var keys = new MutualKeys();
        await using var stalled = await StalledServer.StartAsync(keys);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(stalled.EndPoint).Within();
        var client = new OssuaryStream(new NetworkStream(socket, ownsSocket: true));
        await client.AuthenticateAsClientAsync(keys.ClientOptions().Shortened()).Within();
        await stalled.AuthenticatedAsync().Within();

        // Writes return while their bytes are still queued, until the queue is full: cancelling the
        // wait for room then leaves them queued, with nowhere to go.
        using var room = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            while (true)
            {
                await client.WriteAsync(new byte[1 << 20], room.Token);
            }
        });

        await client.DisposeAsync().AsTask().Within();
    });

    private static Task Run(Func<Task> test) => test().Within(TimeSpan.FromSeconds(60));

    /// <summary>A server that authenticates one client over TCP and then never reads again.</summary>
    private sealed class StalledServer : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly Task<OssuaryStream> _accepted;

        private StalledServer(TcpListener listener, Task<OssuaryStream> accepted)
        {
            _listener = listener;
            _accepted = accepted;
        }

        public EndPoint EndPoint => _listener.LocalEndpoint;

        public static Task<StalledServer> StartAsync(MutualKeys keys)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Server.ReceiveBufferSize = 4096; // inherited by the accepted socket: the stall comes soon
            listener.Start();
            return Task.FromResult(new StalledServer(listener, AcceptAsync(listener, keys)));
        }

        public Task<OssuaryStream> AuthenticatedAsync() => _accepted;

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            if (_accepted.IsCompletedSuccessfully)
            {
                // Not DisposeAsync: that waits for the stalled stream's own Disconnect to leave.
                _accepted.Result.Dispose();
            }

            await Task.CompletedTask;
        }

        private static async Task<OssuaryStream> AcceptAsync(TcpListener listener, MutualKeys keys)
        {
            Socket socket = await listener.AcceptSocketAsync();
            var stream = new OssuaryStream(new NetworkStream(socket, ownsSocket: true));
            var options = new OssuaryServerOptions();
            keys.ConfigureServer(options, TimeSpan.FromSeconds(10));
            await stream.AuthenticateAsServerAsync(options);
            return stream;
        }
    }
}
