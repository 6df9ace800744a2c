using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A <c>UseOssuary</c> handler whose last frames and Disconnect meet a socket the client has reset:
/// Kestrel's send fails, it ends its side of the output, and the flush that carried them returns
/// completed instead of throwing. Nothing of them left, so the output failed: the server must not wait
/// for the client's close as if its Disconnect had gone out, nor end the handler's input as cleanly as
/// if the client had read it.
/// </summary>
public class ResetUnderTheLastWriteTests
{
    // Four full frames fill the handler's input: its inbound loop waits for room, not on the socket, so
    // it does not see the reset itself before the output's end decides how the input ends.
    private const int Frames = 4;

    [Fact]
    public async Task AHandlersInputDoesNotEndCleanlyWhenItsLastWriteMetTheClientsReset()
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        var outcome = new TaskCompletionSource<(string, int)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var full = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        CompletionSignallingWriter? output = null;
        await using (KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.Use(next => connection =>
                {
                    output = new CompletionSignallingWriter(connection.Transport.Output);
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
                    started.TrySetResult();
                    await PipeReads.WaitUntilHoldsAsync(connection.Transport.Input, Frames * OssuarySession.MaxPlaintextLength);
                    full.TrySetResult();

                    // Kestrel's ConnectionClosed fires once its transport's input has failed with the client's reset.
                    var reset = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    using (connection.ConnectionClosed.Register(() => reset.TrySetResult()))
                    {
                        await reset.Task;
                    }

                    // More than Kestrel's output holds, sealed in the same turn as the Disconnect: the flush
                    // that carries them waits for the socket's send, which fails, and returns completed.
                    connection.Transport.Output.Write(new byte[1 << 20]);
                    await connection.Transport.Output.CompleteAsync();

                    // Kestrel's output is completed either way: at once by a failed output, or once the wait
                    // for the client's close, left to the inbound loop, has ended that loop (and the input).
                    await output!.Completed.Within();
                    outcome.TrySetResult(await PeerEndings.ReadToTheEndAsync(connection.Transport.Input));
                });
            }),
            builder => builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug)))
        {
            using SessionSocketPeer client = await SessionSocketPeer.ConnectClientAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), keys);
            await started.Task.Within();
            await client.SendTogetherAsync([.. Enumerable.Range(0, Frames).Select(_ => client.DataPacket(new byte[OssuarySession.MaxPlaintextLength]))]);
            await full.Task.Within();
            client.Socket.LingerState = new LingerOption(enable: true, seconds: 0);
            client.Socket.Close(); // a reset, not a FIN

            Assert.Equal((nameof(OssuaryErrorReason.ConnectionFailed), Frames * OssuarySession.MaxPlaintextLength), await outcome.Task.Within());
        }

        Assert.True(output!.FlushCompleted, "the last flush did not meet the reset, so this test tests nothing");

        // The client's doing: said at Debug, nothing at Error.
        Assert.Contains(logs.Collector.GetSnapshot(), r => r.Id.Id == 5 && r.Level == LogLevel.Debug);
        Assert.DoesNotContain(logs.Collector.GetSnapshot(), r => r.Category?.StartsWith("Ossuary", StringComparison.Ordinal) == true && r.Level >= LogLevel.Warning);
    }

    /// <summary>Kestrel's output, telling when it is completed and whether a flush returned completed.</summary>
    private sealed class CompletionSignallingWriter(PipeWriter inner) : PipeWriter
    {
        private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Completed => _completed.Task;

        public bool FlushCompleted { get; private set; }

        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;

        public override void Advance(int bytes) => inner.Advance(bytes);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null)
        {
            inner.Complete(exception);
            _completed.TrySetResult();
        }

        public override async ValueTask CompleteAsync(Exception? exception = null)
        {
            await inner.CompleteAsync(exception);
            _completed.TrySetResult();
        }

        public override async ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            FlushResult result = await inner.FlushAsync(cancellationToken);
            FlushCompleted |= result.IsCompleted;
            return result;
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
    }
}
