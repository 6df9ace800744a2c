using System.IO.Pipelines;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A server that has refused the client's key (AuthorizeClient said no) and is sending its Disconnect
/// (error) when the handshake's timeout runs out (a client that stopped reading): the refusal's flush
/// waited on the handshake's token, and its cancellation made the refusal a timeout. The server
/// threw HandshakeTimeout and logged "timed out", and the refused key, which an operator watches
/// for, was said nowhere. The refusal is decided: its Disconnect is a farewell, sent as the others are.
/// </summary>
public sealed class RefusalAtTheHandshakeTimeoutTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public Task ARefusalWhoseDisconnectIsStillBeingSentAtTheTimeoutIsReportedAsTheRefusal() => Run(async () =>
    {
        using var server = OssuaryIdentity.Generate();
        using var client = OssuaryIdentity.Generate();
        var time = new FakeTimeProvider();
        var logs = new FakeLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        var toClient = new Pipe();
        var toServer = new Pipe();
        var serverOutput = new HoldingWriter(toClient.Writer);
        var serverOptions = new OssuaryServerOptions
        {
            Identity = server,
            TimeProvider = time,
            HandshakeTimeout = Timeout,
            LoggerFactory = loggerFactory,
            AuthorizeClient = (_, _, _) =>
            {
                serverOutput.Hold(); // the client reads nothing from here on
                return ValueTask.FromResult(false);
            },
        };
        var clientOptions = new OssuaryClientOptions { Identity = client };
        clientOptions.TrustedServerKeys.Add(server.PublicKey);

        Task<OssuaryDuplexPipe> accepting = OssuaryDuplexPipe.AcceptAsync(new DuplexPipe(toServer.Reader, serverOutput), serverOptions);
        await using OssuaryDuplexPipe connected = await OssuaryDuplexPipe.ConnectAsync(new DuplexPipe(toClient.Reader, toServer.Writer), clientOptions).Within();

        await serverOutput.Holding.Within(); // the refusal's Disconnect waits for room
        time.Advance(Timeout);

        OssuaryException refused = await Assert.ThrowsAsync<OssuaryException>(() => accepting.Within());
        Assert.Equal(OssuaryErrorReason.InvalidKey, refused.Reason);
        IReadOnlyList<FakeLogRecord> records = logs.Collector.GetSnapshot();
        Assert.DoesNotContain(records, r => r.Id.Id == 4); // "timed out"
        Assert.Contains(records, r => r.Id.Id == 3 && r.Message.Contains(nameof(OssuaryErrorReason.InvalidKey), StringComparison.Ordinal));
    });

    /// <summary>A writer whose flushes, once held, wait for room that never comes, as a pipe's do for a reader that stopped: only their token ends them.</summary>
    private sealed class HoldingWriter(PipeWriter inner) : PipeWriter
    {
        private readonly TaskCompletionSource _holding = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile bool _held;

        public Task Holding => _holding.Task;

        public void Hold() => _held = true;

        public override void Advance(int bytes) => inner.Advance(bytes);

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) =>
            _held ? WaitForRoomAsync(cancellationToken) : inner.FlushAsync(cancellationToken);

        private async ValueTask<FlushResult> WaitForRoomAsync(CancellationToken cancellationToken)
        {
            _holding.TrySetResult();
            await Task.Delay(System.Threading.Timeout.Infinite, cancellationToken);
            throw new InvalidOperationException("unreachable");
        }
    }

    private static Task Run(Func<Task> test) => test().Within();
}
