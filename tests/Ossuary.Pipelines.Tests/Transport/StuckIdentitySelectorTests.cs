using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// Under <c>UseOssuary</c>, <see cref="OssuaryServerOptions.HandshakeTimeout"/> bounds a connection's
/// <see cref="OssuaryServerOptions.IdentitySelector"/> too (it takes no token, so it is given up on, not
/// stopped): a selector stuck on a key vault that never answers ends its connection at the timeout, told
/// to the client with Disconnect (error) and logged at Error as ours (event 20). It ran before the
/// handshake's timer on Kestrel's own call, so it held the connection for ever, its client until the
/// client's own timeout, and the host's shutdown until its ShutdownTimeout (for ever with none).
/// </summary>
public class StuckIdentitySelectorTests
{
    private const int IdentitySelectorFailed = 20;

    [Fact]
    public Task AnIdentitySelectorThatNeverReturnsEndsItsConnectionAtTheHandshakeTimeoutAndHoldsNoShutdown() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var logs = new FakeLoggerProvider();
        var time = new FakeTimeProvider();
        using var stuck = new StuckSelector(keys.Server);
        OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(
            o =>
            {
                o.AuthorizedClientKeys.Add(keys.Client.PublicKey);
                o.HandshakeTimeout = TimeSpan.FromSeconds(10);
                o.TimeProvider = time;
                o.IdentitySelector = stuck.Select;
            },
            services =>
            {
                OssuaryTestServer.LogTo(logs)(services);
                // A host that waits for its connections as long as they take: only they can end its stop.
                services.Configure<HostOptions>(host => host.ShutdownTimeout = Timeout.InfiniteTimeSpan);
            });
        Task? stopped = null;
        try
        {
            Task<OssuaryClientConnection> connect = OssuaryClient.ConnectAsync(server.EndPoint, PatientClient(keys));
            await stuck.Entered.WaitAsync().Within();
            time.Advance(TimeSpan.FromSeconds(10));

            OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => connect.Within());
            Assert.Equal((OssuaryErrorReason.ConnectionFailed, null), (failed.Reason, failed.InnerException?.GetType()));
            await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == IdentitySelectorFailed));
            FakeLogRecord logged = logs.Collector.GetSnapshot().First(r => r.Id.Id == IdentitySelectorFailed);
            Assert.Equal((LogLevel.Error, typeof(TimeoutException)), (logged.Level, logged.Exception?.GetType()));

            // The selector is still stuck: the host stops all the same.
            stopped = server.DisposeAsync().AsTask();
            await stopped.Within();
            Assert.False(stuck.Released);
        }
        finally
        {
            stuck.Release();
            await (stopped ?? server.DisposeAsync().AsTask());
        }
    });

    /// <summary>
    /// A bare pipe's <see cref="OssuaryDuplexPipe.AcceptAsync"/> gives a stuck selector up when its caller cancels:
    /// the caller's <see cref="OperationCanceledException"/>, the transport left to it, as for a token cancelled
    /// before the selector. The accept waited for the selector whatever its token said.
    /// </summary>
    [Fact]
    public Task CancellingAcceptAsyncEndsItWhileItsIdentitySelectorIsStuck() => Run(async () =>
    {
        using var keys = new MutualKeys();
        using var stuck = new StuckSelector(keys.Server);
        using var cancel = new CancellationTokenSource();
        var options = new OssuaryServerOptions { Mode = OssuaryServerMode.Unauthenticated, IdentitySelector = stuck.Select };
        try
        {
            // Off the test's thread: the selector ran on the caller's, inside the call.
            Task<OssuaryDuplexPipe> accept = Task.Run(() => OssuaryDuplexPipe.AcceptAsync(new LinkedPipes().Server, options, cancel.Token));
            await stuck.Entered.WaitAsync().Within();
            cancel.Cancel();

            OperationCanceledException cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => accept.Within());
            Assert.Equal(cancel.Token, cancelled.CancellationToken);
            Assert.False(stuck.Released);
        }
        finally
        {
            stuck.Release();
        }
    });

    /// <summary>
    /// A bare pipe's stuck selector runs out the handshake's time as under <c>UseOssuary</c>: AcceptAsync throws
    /// <see cref="OssuaryErrorReason.ConnectionFailed"/> with the <see cref="TimeoutException"/> inside, and the
    /// client is told with Disconnect (error).
    /// </summary>
    [Fact]
    public Task AcceptAsyncEndsAtTheHandshakeTimeoutWhileItsIdentitySelectorIsStuckAndTellsTheClient() => Run(async () =>
    {
        using var keys = new MutualKeys();
        using var stuck = new StuckSelector(keys.Server);
        var time = new FakeTimeProvider();
        var options = new OssuaryServerOptions { Mode = OssuaryServerMode.Unauthenticated, HandshakeTimeout = TimeSpan.FromSeconds(10), TimeProvider = time, IdentitySelector = stuck.Select };
        OssuaryClientOptions clientOptions = PatientClient(keys);
        LinkedPipes link = LinkedPipes.Transparent(out _);
        try
        {
            Task<OssuaryDuplexPipe> client = OssuaryDuplexPipe.ConnectAsync(link.Client, clientOptions);
            Task<OssuaryDuplexPipe> accept = Task.Run(() => OssuaryDuplexPipe.AcceptAsync(link.Server, options));
            await stuck.Entered.WaitAsync().Within();
            time.Advance(TimeSpan.FromSeconds(10));

            OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => accept.Within());
            Assert.Equal((OssuaryErrorReason.ConnectionFailed, typeof(TimeoutException)), (failed.Reason, failed.InnerException?.GetType()));
            OssuaryException told = await Assert.ThrowsAsync<OssuaryException>(() => client.Within());
            Assert.Equal((OssuaryErrorReason.ConnectionFailed, null), (told.Reason, told.InnerException?.GetType()));
        }
        finally
        {
            stuck.Release();
        }
    });

    /// <summary>
    /// An <see cref="OssuaryStream"/> server bounds its stuck selector as <c>AcceptAsync</c> does: at the handshake's
    /// timeout it throws <see cref="OssuaryErrorReason.ConnectionFailed"/> with the <see cref="TimeoutException"/>
    /// inside and tells its client; its caller's token gives the selector up too. It called the selector inline
    /// and waited for it for ever, whatever the token said.
    /// </summary>
    [Fact]
    public Task AStreamServerEndsAtTheHandshakeTimeoutOrItsTokenWhileItsIdentitySelectorIsStuck() => Run(async () =>
    {
        using var keys = new MutualKeys();
        using var stuck = new StuckSelector(keys.Server);
        var time = new FakeTimeProvider();
        var options = new OssuaryServerOptions { Mode = OssuaryServerMode.Unauthenticated, HandshakeTimeout = TimeSpan.FromSeconds(10), TimeProvider = time, IdentitySelector = stuck.Select };
        OssuaryClientOptions clientOptions = PatientClient(keys);
        try
        {
            (System.Net.Sockets.NetworkStream serverSide, System.Net.Sockets.NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
            await using var server = new OssuaryStream(serverSide);
            await using var client = new OssuaryStream(clientSide);
            Task connect = client.AuthenticateAsClientAsync(clientOptions);
            Task accept = Task.Run(() => server.AuthenticateAsServerAsync(options));
            await stuck.Entered.WaitAsync().Within();
            time.Advance(TimeSpan.FromSeconds(10));

            OssuaryException told = await Assert.ThrowsAsync<OssuaryException>(() => connect.Within());
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, told.Reason);
            await client.DisposeAsync(); // closes its end: the server's wait for that (at most 5 s) ends now
            OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => accept.Within());
            Assert.Equal((OssuaryErrorReason.ConnectionFailed, typeof(TimeoutException)), (failed.Reason, failed.InnerException?.GetType()));

            (System.Net.Sockets.NetworkStream otherServerSide, System.Net.Sockets.NetworkStream otherClientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
            using var silentClient = otherClientSide;
            await using var other = new OssuaryStream(otherServerSide);
            using var cancel = new CancellationTokenSource();
            Task cancelled = Task.Run(() => other.AuthenticateAsServerAsync(options, cancel.Token));
            await stuck.Entered.WaitAsync().Within();
            cancel.Cancel();
            OperationCanceledException thrown = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.Within());
            Assert.Equal(cancel.Token, thrown.CancellationToken);
            Assert.False(stuck.Released);
        }
        finally
        {
            stuck.Release();
        }
    });

    private static Task Run(Func<Task> test) => test().Within();

    /// <summary>A client whose own timeouts are not what ends its wait.</summary>
    private static OssuaryClientOptions PatientClient(MutualKeys keys)
    {
        OssuaryClientOptions options = keys.ClientOptions();
        options.HandshakeTimeout = TimeSpan.FromMinutes(5);
        options.HandshakeStepTimeout = TimeSpan.FromMinutes(5);
        return options;
    }

    /// <summary>An IdentitySelector stuck on a key vault that never answers, until the test releases it.</summary>
    private sealed class StuckSelector(OssuaryIdentity identity) : IDisposable
    {
        private readonly ManualResetEventSlim _release = new();

        /// <summary>Released once a call of <see cref="Select"/> has begun.</summary>
        public SemaphoreSlim Entered { get; } = new(0);

        public bool Released => _release.IsSet;

        public OssuaryIdentity? Select(Microsoft.AspNetCore.Connections.ConnectionContext? connection)
        {
            Entered.Release();
            _release.Wait();
            return identity;
        }

        public void Release() => _release.Set();

        // Released, not disposed: a selector thread given up on may still be waking from its wait.
        public void Dispose() => _release.Set();
    }
}
