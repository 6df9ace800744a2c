using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// HandshakeTimeout bounds the whole handshake even when a trust or admission callback never
/// returns and does not watch its token (a lookup stuck on a dead database, say): the callback's
/// token is cancelled at the timeout, and the handshake stops waiting for it then.
/// </summary>
public class StuckCallbackTimeoutTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);

    [Fact]
    public Task AnAuthorizeClientThatNeverReturnsStillTimesTheHandshakeOut() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var never = new TaskCompletionSource<bool>();
        var serverOptions = new OssuaryServerOptions { Identity = keys.Server, HandshakeTimeout = Timeout };
        serverOptions.AuthorizeClient = (_, _, _) => new ValueTask<bool>(never.Task);
        LinkedPipes link = LinkedPipes.Transparent(out _);

        Task<OssuaryDuplexPipe> server = OssuaryDuplexPipe.AcceptAsync(link.Server, serverOptions);
        _ = OssuaryDuplexPipe.ConnectAsync(link.Client, keys.ClientOptions());

        OssuaryException timedOut = await Assert.ThrowsAsync<OssuaryException>(() => server.Within());
        Assert.Equal(OssuaryErrorReason.HandshakeTimeout, timedOut.Reason);
    });

    [Fact]
    public Task ATrustServerThatNeverReturnsStillTimesTheHandshakeOut() => Run(async () =>
    {
        using var keys = new MutualKeys();
        var never = new TaskCompletionSource<bool>();
        var serverOptions = new OssuaryServerOptions();
        keys.ConfigureServer(serverOptions, TimeSpan.FromSeconds(10));
        var clientOptions = new OssuaryClientOptions { Identity = keys.Client, HandshakeTimeout = Timeout };
        clientOptions.TrustServer = (_, _) => new ValueTask<bool>(never.Task);
        LinkedPipes link = LinkedPipes.Transparent(out _);

        _ = OssuaryDuplexPipe.AcceptAsync(link.Server, serverOptions);
        Task<OssuaryDuplexPipe> client = OssuaryDuplexPipe.ConnectAsync(link.Client, clientOptions);

        OssuaryException timedOut = await Assert.ThrowsAsync<OssuaryException>(() => client.Within());
        Assert.Equal(OssuaryErrorReason.HandshakeTimeout, timedOut.Reason);
    });

    private static Task Run(Func<Task> test) => test().Within();
}
