using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A <c>UseOssuary</c> handler that completed its output behind a long reply to a client that reads
/// slowly, and waits for the connection's end, when Kestrel aborts the connection (the host does so
/// once its ShutdownTimeout is up): the reply and the Disconnect still in Kestrel's output are dropped.
/// The abort ends the transport's input with a ConnectionAbortedException, as our own output's
/// completion does; taken for that, the handler's input ended cleanly, as if the client had read it all.
/// </summary>
public class AbortUnderTheLastFlushTests
{
    // Far more than Kestrel's output and both sockets' buffers hold: the flush that carries the Disconnect waits for the client.
    private const int Reply = 16 << 20;

    [Fact]
    public async Task AHandlersInputDoesNotEndCleanlyWhenKestrelAbortsUnderItsLastFlush()
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        var outcome = new TaskCompletionSource<(string, int)>(TaskCreationOptions.RunContinuationsAsynchronously);
        ConnectionContext? kestrel = null;
        HeldFlushWriter? output = null;
        await using (KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.Use(next => connection =>
                {
                    kestrel = connection;
                    output = new HeldFlushWriter(connection.Transport.Output, outcome.Task);
                    connection.Transport = new DuplexPipe(connection.Transport.Input, output);
                    return next(connection);
                });
                listen.UseOssuary(o =>
                {
                    o.Identity = keys.Server;
                    o.AuthorizedClientKeys.Add(keys.Client.PublicKey);
                });
                listen.Run(async connection =>
                {
                    output!.Arm();
                    connection.Transport.Output.Write(new byte[Reply]);
                    await connection.Transport.Output.CompleteAsync();
                    outcome.TrySetResult(await PeerEndings.ReadToTheEndAsync(connection.Transport.Input));
                });
            }),
            builder => builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug)))
        {
            using SessionSocketPeer client = await SessionSocketPeer.ConnectClientAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), keys);

            // The reply and the Disconnect are sealed and the flush that carries them waits for room: abort.
            await output!.Waiting.Within();
            kestrel!.Abort(new ConnectionAbortedException("The host is shutting down."));

            Assert.Equal(nameof(OssuaryErrorReason.ConnectionFailed), (await outcome.Task.Within()).Item1);
        }

        Assert.True(output!.FlushCompleted, "the abort did not end the flush that carried the Disconnect, so this test tests nothing");

        // The host's doing: said at Debug, nothing at Error.
        Assert.DoesNotContain(logs.Collector.GetSnapshot(), r => r.Category?.StartsWith("Ossuary", StringComparison.Ordinal) == true && r.Level >= LogLevel.Warning);
    }

    /// <summary>
    /// Kestrel's output. Once armed, says when a flush waits for room, and holds a flush that the abort
    /// ended (completed) until the handler's input has ended: the abort reaches the input first, as it may.
    /// </summary>
    private sealed class HeldFlushWriter(PipeWriter inner, Task inputEnded) : PipeWriter
    {
        private readonly TaskCompletionSource _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile bool _armed;

        public Task Waiting => _waiting.Task;

        public bool FlushCompleted { get; private set; }

        public void Arm() => _armed = true;

        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;

        public override void Advance(int bytes) => inner.Advance(bytes);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        public override async ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            ValueTask<FlushResult> flush = inner.FlushAsync(cancellationToken);
            if (!_armed)
            {
                return await flush;
            }

            if (!flush.IsCompleted)
            {
                _waiting.TrySetResult();
            }

            FlushResult result = await flush;
            if (result.IsCompleted)
            {
                FlushCompleted = true;
                await inputEnded;
            }

            return result;
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
    }
}
