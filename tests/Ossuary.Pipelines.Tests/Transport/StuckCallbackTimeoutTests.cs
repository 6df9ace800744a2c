using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// HandshakeTimeout bounds the whole handshake even when a trust or admission callback never
/// returns and does not watch its token (a lookup stuck on a dead database, say): the callback's
/// token is cancelled at the timeout, and the handshake stops waiting for it then. The time was
/// used up by this side's callback, not the peer: it is logged at Error, naming the callback.
/// </summary>
public class StuckCallbackTimeoutTests
{
    private const int HandshakeTimedOut = 4;
    private const int HandshakeFaulted = 6;
    // The peer's packets must reach the stuck callback before this runs out, or the handshake times
    // out waiting for the peer instead (a quiet Debug line, not the callback's Error): at 1 s that
    // was a race a stall of a loaded CI machine could lose.
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    [Fact]
    public Task AnAuthorizeClientThatNeverReturnsStillTimesTheHandshakeOutAndIsLoggedAsOurs() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        var never = new TaskCompletionSource<bool>();
        var serverOptions = new OssuaryServerOptions { Identity = keys.Server, HandshakeTimeout = Timeout, LoggerFactory = loggers };
        serverOptions.AuthorizeClient = (_, _, _) => new ValueTask<bool>(never.Task);
        LinkedPipes link = LinkedPipes.Transparent(out _);

        Task<OssuaryDuplexPipe> server = OssuaryDuplexPipe.AcceptAsync(link.Server, serverOptions);
        _ = OssuaryDuplexPipe.ConnectAsync(link.Client, keys.ClientOptions());

        OssuaryException timedOut = await Assert.ThrowsAsync<OssuaryException>(() => server.Within());
        Assert.Equal(OssuaryErrorReason.HandshakeTimeout, timedOut.Reason);
        Assert.Contains("AuthorizeClient had not returned", timedOut.Message, StringComparison.Ordinal);
        AssertLoggedAsOurs(logs, "AuthorizeClient");
    });

    [Fact]
    public Task ATrustServerThatNeverReturnsStillTimesTheHandshakeOutAndIsLoggedAsOurs() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        var never = new TaskCompletionSource<bool>();
        var serverOptions = new OssuaryServerOptions();
        keys.ConfigureServer(serverOptions, TimeSpan.FromSeconds(10));
        var clientOptions = new OssuaryClientOptions { Identity = keys.Client, HandshakeTimeout = Timeout, LoggerFactory = loggers };
        clientOptions.TrustServer = (_, _) => new ValueTask<bool>(never.Task);
        LinkedPipes link = LinkedPipes.Transparent(out _);

        _ = OssuaryDuplexPipe.AcceptAsync(link.Server, serverOptions);
        Task<OssuaryDuplexPipe> client = OssuaryDuplexPipe.ConnectAsync(link.Client, clientOptions);

        OssuaryException timedOut = await Assert.ThrowsAsync<OssuaryException>(() => client.Within());
        Assert.Equal(OssuaryErrorReason.HandshakeTimeout, timedOut.Reason);
        Assert.Contains("TrustServer had not returned", timedOut.Message, StringComparison.Ordinal);
        AssertLoggedAsOurs(logs, "TrustServer");
    });

    /// <summary>
    /// The client of a server whose AuthorizeClient ran out the time is told, as it is when the callback
    /// throws (and as a stuck TrustServer's server is): Disconnect (error), read as ConnectionFailed.
    /// It read Truncated instead, a connection cut as if by the network, though it was established on
    /// its side (its authentication was out) and the failure was the server's.
    /// </summary>
    [Fact]
    public Task TheClientOfAnAuthorizeClientThatNeverReturnsIsToldWithADisconnect() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var never = new TaskCompletionSource<bool>();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = keys.Server;
            o.HandshakeTimeout = Timeout;
            o.AuthorizeClient = (_, _, _) => new ValueTask<bool>(never.Task);
        });

        await using Integrations.OssuaryClientConnection connection = await Integrations.OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()).Within();

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(connection.Transport.Input).Within());
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason); // a Disconnect (error), not Truncated
    });

    /// <summary>
    /// An AuthorizeClient that blocks before it returns its task (a synchronous lookup stuck on a dead
    /// database, handed back in a finished ValueTask) is bound by the timeout too, and its client told.
    /// The handshake called it inline, so the timer had nothing to give up on: the connection waited
    /// for as long as the callback blocked (here, until the test ends), the client never told and nothing logged.
    /// </summary>
    [Fact]
    public Task AnAuthorizeClientThatBlocksBeforeReturningStillTimesTheHandshakeOutAndItsClientIsTold() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        using var release = new ManualResetEventSlim();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = keys.Server;
            o.HandshakeTimeout = Timeout;
            o.LoggerFactory = loggers;
            o.AuthorizeClient = (_, _, _) =>
            {
                release.Wait(CancellationToken.None); // ignores its token, and blocks the thread that called it
                return ValueTask.FromResult(true);
            };
        });

        try
        {
            await using Integrations.OssuaryClientConnection connection = await Integrations.OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()).Within();
            OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(connection.Transport.Input).Within());
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
            AssertLoggedAsOurs(logs, "AuthorizeClient");
        }
        finally
        {
            release.Set();
        }
    });

    /// <summary>
    /// A callback the handshake gave up on at its timeout may still fail later (the lookup it was stuck
    /// on finally errors). That failure is this side's, with its cause: logged at Error (event 6) as a
    /// throwing callback is. It was dropped: the abandoned task faulted unobserved, its exception lost
    /// to TaskScheduler.UnobservedTaskException when the task was collected, and never logged.
    /// </summary>
    [Fact]
    public Task AnAuthorizeClientThatThrowsAfterTheTimeoutIsLoggedWithItsCauseNotLeftUnobserved() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        const string Cause = "the directory behind AuthorizeClient went away after the timeout";
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thrown = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serverOptions = new OssuaryServerOptions { Identity = keys.Server, HandshakeTimeout = Timeout, LoggerFactory = loggers };
        serverOptions.AuthorizeClient = async (_, _, _) =>
        {
            await release.Task; // ignores its token: stuck until released
            thrown.SetResult();
            throw new InvalidOperationException(Cause);
        };
        var unobserved = new ConcurrentQueue<Exception>();
        EventHandler<UnobservedTaskExceptionEventArgs> onUnobserved = (_, e) => unobserved.Enqueue(e.Exception);
        TaskScheduler.UnobservedTaskException += onUnobserved;
        try
        {
            LinkedPipes link = LinkedPipes.Transparent(out _);
            Task<OssuaryDuplexPipe> server = OssuaryDuplexPipe.AcceptAsync(link.Server, serverOptions);
            _ = OssuaryDuplexPipe.ConnectAsync(link.Client, keys.ClientOptions());
            OssuaryException timedOut = await Assert.ThrowsAsync<OssuaryException>(() => server.Within());
            Assert.Equal(OssuaryErrorReason.HandshakeTimeout, timedOut.Reason);

            release.SetResult();
            await thrown.Task.Within();
            for (int i = 0; i < 5; i++)
            {
                await Task.Delay(50);
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }

            Assert.DoesNotContain(unobserved, e => e.ToString().Contains(Cause, StringComparison.Ordinal));
            while (!logs.Collector.GetSnapshot().Any(r => r.Exception?.Message == Cause))
            {
                await Task.Delay(20); // the report follows the throw on the callback's thread; Run guards against a hang
            }

            FakeLogRecord late = logs.Collector.GetSnapshot().First(r => r.Exception?.Message == Cause);
            Assert.Equal((HandshakeFaulted, LogLevel.Error), (late.Id.Id, late.Level));
            Assert.Contains("AuthorizeClient", late.Message, StringComparison.Ordinal);
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= onUnobserved;
        }
    });

    [Fact]
    public Task ASilentPeerIsStillAQuietTimeout() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        var serverOptions = new OssuaryServerOptions { Identity = keys.Server, HandshakeTimeout = Timeout, LoggerFactory = loggers, Mode = OssuaryServerMode.Unauthenticated };
        LinkedPipes link = LinkedPipes.Transparent(out _);

        // Nobody connects: the peer, not a callback, let the time run out.
        OssuaryException timedOut = await Assert.ThrowsAsync<OssuaryException>(() => OssuaryDuplexPipe.AcceptAsync(link.Server, serverOptions).Within());
        Assert.Equal(OssuaryErrorReason.HandshakeTimeout, timedOut.Reason);
        FakeLogRecord record = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id is HandshakeTimedOut or HandshakeFaulted);
        Assert.Equal((HandshakeTimedOut, LogLevel.Debug), (record.Id.Id, record.Level));
    });

    private static void AssertLoggedAsOurs(FakeLoggerProvider logs, string callback)
    {
        FakeLogRecord record = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id is HandshakeTimedOut or HandshakeFaulted);
        Assert.Equal((HandshakeFaulted, LogLevel.Error), (record.Id.Id, record.Level));
        Assert.Contains(callback, record.Message, StringComparison.Ordinal);
        Assert.IsType<TimeoutException>(record.Exception);
    }

    private static Task Run(Func<Task> test) => test().Within();
}
