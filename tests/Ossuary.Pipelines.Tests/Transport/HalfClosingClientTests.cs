using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A client that sends its authentication, its data and Disconnect together and closes its socket
/// at once (the original's client, a telemetry device) is served: Kestrel cancels
/// <see cref="ConnectionContext.ConnectionClosed"/> as soon as it reads the socket's end, which can
/// be before the server's handshake has read the authentication already in its pipe.
/// </summary>
public class HalfClosingClientTests
{
    [Fact]
    public async Task ConnectionClosedFiringBeforeTheLastHandshakeReadStillServesTheClient()
    {
        using var keys = new MutualKeys();
        var serverOptions = new OssuaryServerOptions();
        keys.ConfigureServer(serverOptions, TimeSpan.FromSeconds(30));
        using var plans = new ServerPlanSource(serverOptions, null, null, "test", null, null);

        // The server's transport input wakes its reader through a scheduler the test can hold, to
        // put Kestrel's order on it: the bytes, then the socket's end, then ConnectionClosed, all
        // before the handshake's read resumes.
        var held = new HoldingScheduler();
        var upstream = new Pipe(new PipeOptions(readerScheduler: held, useSynchronizationContext: false));
        var downstream = new Pipe(new PipeOptions(useSynchronizationContext: false));
        var clientOut = new Pipe(new PipeOptions(useSynchronizationContext: false));
        using var closed = new CancellationTokenSource();
        var context = new DefaultConnectionContext("half-closing", new DuplexPipe(upstream.Reader, downstream.Writer), new DuplexPipe(downstream.Reader, upstream.Writer))
        {
            ConnectionClosed = closed.Token,
        };

        var received = new TaskCompletionSource<(byte[] Bytes, Exception? Outcome)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var middleware = new OssuaryServerMiddleware(async connection =>
        {
            try
            {
                received.TrySetResult((await PipeReads.ReadToEndAsync(connection.Transport.Input), null));
            }
            catch (Exception ex)
            {
                received.TrySetResult(([], ex));
            }
        }, plans);
        Task served = middleware.OnConnectionAsync(context);

        Task<OssuaryDuplexPipe> connecting = OssuaryDuplexPipe.ConnectAsync(new DuplexPipe(downstream.Reader, clientOut.Writer), keys.ClientOptions());
        ReadResult hello = await clientOut.Reader.ReadAsync().AsTask().Within();
        await upstream.Writer.WriteAsync(hello.Buffer.ToArray());
        clientOut.Reader.AdvanceTo(hello.Buffer.End);

        // The client's authentication, its data and its Disconnect, held back until all are written.
        OssuaryDuplexPipe client = await connecting.Within();
        byte[] payload = new byte[5000];
        Random.Shared.NextBytes(payload);
        await client.Output.WriteAsync(payload);
        await client.Output.CompleteAsync();
        byte[] rest = await PipeReads.ReadToEndAsync(clientOut.Reader);

        held.Hold = true;
        await upstream.Writer.WriteAsync(rest);
        await upstream.Writer.CompleteAsync();
        await closed.CancelAsync();
        held.Release();

        await served.Within();
        Assert.True(received.Task.IsCompleted, "the server dropped the connection in its handshake: the handler never ran");
        (byte[] bytes, Exception? outcome) = await received.Task;
        Assert.Null(outcome);
        Assert.Equal(payload, bytes);
        await client.DisposeAsync().AsTask().Within();
    }

    /// <summary>The thread pool, except that while <see cref="Hold"/> is set work waits for <see cref="Release"/>.</summary>
    private sealed class HoldingScheduler : PipeScheduler
    {
        private readonly Lock _lock = new();
        private readonly List<(Action<object?> Action, object? State)> _held = [];

        public bool Hold { get; set; }

        public override void Schedule(Action<object?> action, object? state)
        {
            lock (_lock)
            {
                if (Hold)
                {
                    _held.Add((action, state));
                    return;
                }
            }

            ThreadPool.Schedule(action, state);
        }

        public void Release()
        {
            lock (_lock)
            {
                Hold = false;
                foreach ((Action<object?> action, object? state) in _held)
                {
                    ThreadPool.Schedule(action, state);
                }

                _held.Clear();
            }
        }
    }
}
