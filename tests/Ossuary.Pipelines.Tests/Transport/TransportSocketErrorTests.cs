using System.IO.Pipelines;
using System.Net.Sockets;
using System.Reflection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A transport that fails with a socket error (Kestrel passes on what is not a reset or an abort:
/// a peer that vanished, whose keep-alive probes or retransmissions time out) failed because of the
/// network and the peer, not this side: Debug, reason ConnectionFailed, the system's words kept.
/// </summary>
public class TransportSocketErrorTests
{
    private const int ConnectionEndedWithError = 5;
    private const int ConnectionFaulted = 7;

    [Fact]
    public Task ASocketErrorUnderAnEstablishedConnectionIsThePeersFailureNotOurs() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        var serverOptions = new OssuaryServerOptions { LoggerFactory = loggers };
        keys.ConfigureServer(serverOptions, TimeSpan.FromSeconds(10));
        LinkedPipes link = LinkedPipes.Transparent(out _);
        Task<OssuaryDuplexPipe> accepting = OssuaryDuplexPipe.AcceptAsync(link.Server, serverOptions);
        await using OssuaryDuplexPipe client = await OssuaryDuplexPipe.ConnectAsync(link.Client, keys.ClientOptions()).Within();
        await using OssuaryDuplexPipe server = await accepting.Within();

        await link.Upstream.To.CompleteAsync(new SocketException((int)SocketError.TimedOut));

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(server.Input).Within());
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
        Assert.Contains("The transport failed", failed.Message, StringComparison.Ordinal);
        Assert.IsType<SocketException>(failed.InnerException);
        FakeLogRecord logged = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id is ConnectionEndedWithError or ConnectionFaulted);
        Assert.Equal((ConnectionEndedWithError, LogLevel.Debug), (logged.Id.Id, logged.Level));
    });

    /// <summary>
    /// The other direction's counterpart of the inbound loop's rule: a failure of the output that is
    /// not I/O (here the transport's writer completed under the connection by code on this side) is
    /// ours, logged at Error with its exception. The outbound loop kept it to itself: the application's
    /// writes returned completed and nothing said why.
    /// </summary>
    [Fact]
    public Task AnOutputFailureOfThisSideIsLoggedAtErrorWithItsCause() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        var serverOptions = new OssuaryServerOptions();
        keys.ConfigureServer(serverOptions, TimeSpan.FromSeconds(10));
        OssuaryClientOptions clientOptions = keys.ClientOptions();
        clientOptions.LoggerFactory = loggers;
        LinkedPipes link = LinkedPipes.Transparent(out _);
        Task<OssuaryDuplexPipe> accepting = OssuaryDuplexPipe.AcceptAsync(link.Server, serverOptions);
        await using OssuaryDuplexPipe client = await OssuaryDuplexPipe.ConnectAsync(link.Client, clientOptions).Within();
        await using OssuaryDuplexPipe server = await accepting.Within();

        await link.Client.Output.CompleteAsync(); // a bug of this side: the connection's transport writer is gone
        await client.Output.WriteAsync("lost"u8.ToArray()).AsTask().Within();

        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == ConnectionFaulted));
        FakeLogRecord logged = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == ConnectionFaulted);
        Assert.Equal(LogLevel.Error, logged.Level);
        Assert.IsType<InvalidOperationException>(logged.Exception);
    });

    [Fact]
    public Task ATransportWhoseEndsThrowAsTheyCompleteStillHasDisposalZeroTheSessionKey() => Run(async () =>
    {
        // A stream transport's writer writes what it holds as it completes, and throws if the stream
        // does (a reset peer): disposal threw that and left the session, and its key, undisposed.
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        var serverOptions = new OssuaryServerOptions { LoggerFactory = loggers };
        keys.ConfigureServer(serverOptions, TimeSpan.FromSeconds(10));
        LinkedPipes link = LinkedPipes.Transparent(out _);
        var transport = new DuplexPipe(new CompletionFailingReader(link.Server.Input), new CompletionFailingWriter(link.Server.Output));
        Task<OssuaryDuplexPipe> accepting = OssuaryDuplexPipe.AcceptAsync(transport, serverOptions);
        await using OssuaryDuplexPipe client = await OssuaryDuplexPipe.ConnectAsync(link.Client, keys.ClientOptions()).Within();
        OssuaryDuplexPipe server = await accepting.Within();
        object session = typeof(OssuaryDuplexPipe).GetField("_session", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(server)!;
        FieldInfo cipher = session.GetType().GetField("_cipher", BindingFlags.Instance | BindingFlags.NonPublic)!;
        Assert.NotNull(cipher.GetValue(session));

        await server.DisposeAsync().AsTask().Within();

        Assert.Null(cipher.GetValue(session)); // the session, and its key, disposed
        IReadOnlyList<FakeLogRecord> records = logs.Collector.GetSnapshot();
        Assert.DoesNotContain(records, r => r.Id.Id == ConnectionFaulted); // the transport's failure, not ours
        Assert.Contains(records, r => (r.Id.Id, r.Level) == (ConnectionEndedWithError, LogLevel.Debug) && r.Exception?.InnerException is IOException);
    });

    /// <summary>Throws from completion, once its inner writer is completed, as a stream writer whose stream fails does.</summary>
    private sealed class CompletionFailingWriter(PipeWriter inner) : PipeWriter
    {
        public override void Advance(int bytes) => inner.Advance(bytes);

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

        public override void Complete(Exception? exception = null)
        {
            inner.Complete(exception);
            throw new IOException("Connection reset by peer (the bytes held at completion were not written)");
        }
    }

    /// <summary>Throws from completion, once its inner reader is completed.</summary>
    private sealed class CompletionFailingReader(PipeReader inner) : PipeReader
    {
        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) => inner.ReadAsync(cancellationToken);

        public override bool TryRead(out ReadResult result) => inner.TryRead(out result);

        public override void Complete(Exception? exception = null)
        {
            inner.Complete(exception);
            throw new IOException("Connection reset by peer");
        }
    }

    private static Task Run(Func<Task> test) => test().Within();
}
