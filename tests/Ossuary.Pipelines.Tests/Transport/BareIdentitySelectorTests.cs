using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// <see cref="OssuaryServerOptions.IdentitySelector"/> on a bare pipe or stream (no connection):
/// a selector that fails is this side's failure, logged at Error (event 20, as under UseOssuary) and
/// thrown as the documented <see cref="OssuaryException"/> with its cause inside. It escaped raw
/// and unlogged before.
/// </summary>
public class BareIdentitySelectorTests
{
    private const int IdentitySelectorFailed = 20;

    [Fact]
    public async Task AThrowingSelectorFailsAcceptAsyncWithItsCauseAndIsLoggedAtError()
    {
        var logs = new FakeLoggerProvider();
        var vaultDown = new InvalidOperationException("the key vault is down");
        OssuaryServerOptions options = Options(logs, _ => throw vaultDown);

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => OssuaryDuplexPipe.AcceptAsync(new LinkedPipes().Server, options).Within());

        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
        Assert.Same(vaultDown, failed.InnerException);
        Assert.Contains("IdentitySelector", failed.Message);
        FakeLogRecord logged = Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == IdentitySelectorFailed);
        Assert.Equal(LogLevel.Error, logged.Level);
        Assert.Same(vaultDown, logged.Exception);
    }

    /// <summary>
    /// The peer of a bare pipe whose selector failed is told, as under <c>UseOssuary</c>: Disconnect
    /// (error), read as <see cref="OssuaryErrorReason.ConnectionFailed"/>. Nothing was sent, and a
    /// client over a transport its server's caller kept open waited for the ServerHandshake until
    /// its own handshake timed out.
    /// </summary>
    [Fact]
    public async Task TheClientOfABarePipeWhoseSelectorThrowsIsToldWithADisconnect()
    {
        var logs = new FakeLoggerProvider();
        OssuaryServerOptions options = Options(logs, _ => throw new InvalidOperationException("the key vault is down"));
        using var server = OssuaryIdentity.Generate();
        var clientOptions = new OssuaryClientOptions { HandshakeTimeout = TimeSpan.FromMinutes(1) };
        clientOptions.TrustedServerKeys.Add(server.PublicKey);
        LinkedPipes link = LinkedPipes.Transparent(out _);

        Task<OssuaryDuplexPipe> client = OssuaryDuplexPipe.ConnectAsync(link.Client, clientOptions);
        await Assert.ThrowsAsync<OssuaryException>(() => OssuaryDuplexPipe.AcceptAsync(link.Server, options).Within());

        OssuaryException told = await Assert.ThrowsAsync<OssuaryException>(() => client.Within());
        Assert.Equal((OssuaryErrorReason.ConnectionFailed, null), (told.Reason, told.InnerException?.GetType()));
    }

    /// <summary>
    /// The same over an <see cref="OssuaryStream"/> on real loopback TCP: its client waited for the
    /// ServerHandshake until its own handshake timed out while the failed server's stream stayed open.
    /// </summary>
    [Fact]
    public async Task TheClientOfAStreamWhoseSelectorThrowsIsToldWithADisconnect()
    {
        var logs = new FakeLoggerProvider();

        // Its refusal's wait runs out: the client is not closed until the test ends.
        OssuaryServerOptions options = Options(logs, _ => throw new InvalidOperationException("the key vault is down")).Shortened();
        using var server = OssuaryIdentity.Generate();
        var clientOptions = new OssuaryClientOptions { HandshakeTimeout = TimeSpan.FromMinutes(1) };
        clientOptions.TrustedServerKeys.Add(server.PublicKey);
        (System.Net.Sockets.NetworkStream serverSide, System.Net.Sockets.NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        await using var serverStream = new OssuaryStream(serverSide);
        await using var clientStream = new OssuaryStream(clientSide);

        Task client = clientStream.AuthenticateAsClientAsync(clientOptions);
        await Assert.ThrowsAsync<OssuaryException>(() => serverStream.AuthenticateAsServerAsync(options).Within());

        OssuaryException told = await Assert.ThrowsAsync<OssuaryException>(() => client.Within());
        Assert.Equal((OssuaryErrorReason.ConnectionFailed, null), (told.Reason, told.InnerException?.GetType()));
    }

    [Fact]
    public async Task ASelectorThatReturnsNoKeyWithoutADefaultFailsAcceptAsyncSayingSo()
    {
        var logs = new FakeLoggerProvider();
        OssuaryServerOptions options = Options(logs, _ => null);

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => OssuaryDuplexPipe.AcceptAsync(new LinkedPipes().Server, options).Within());

        Assert.Contains("no key to present", Assert.IsType<InvalidOperationException>(failed.InnerException).Message);
        Assert.Equal(LogLevel.Error, Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == IdentitySelectorFailed).Level);
    }

    [Fact]
    public async Task AnUnauthenticatedServersSelectorThatReturnsNoKeyGetsNoGeneratedOneAndFails()
    {
        // As OssuaryServerOptions.IdentitySelector says: a server with a selector gets no generated key,
        // unauthenticated or not, so a selector that returns none ends the connection (event 20).
        var logs = new FakeLoggerProvider();
        var options = new OssuaryServerOptions
        {
            Mode = OssuaryServerMode.Unauthenticated,
            IdentitySelector = _ => null,
            LoggerFactory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug)),
        };

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => OssuaryDuplexPipe.AcceptAsync(new LinkedPipes().Server, options).Within());

        Assert.Contains("no key to present", Assert.IsType<InvalidOperationException>(failed.InnerException).Message);
        Assert.Equal(LogLevel.Error, Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == IdentitySelectorFailed).Level);
    }

    [Fact]
    public async Task AThrowingSelectorFailsAStreamsServerAuthenticationWithItsCauseAndIsLoggedAtError()
    {
        var logs = new FakeLoggerProvider();
        var vaultDown = new InvalidOperationException("the key vault is down");
        await using var stream = new OssuaryStream(new MemoryStream());

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => stream.AuthenticateAsServerAsync(Options(logs, _ => throw vaultDown)).Within());

        Assert.Same(vaultDown, failed.InnerException);
        Assert.Equal(LogLevel.Error, Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == IdentitySelectorFailed).Level);
    }

    private static OssuaryServerOptions Options(FakeLoggerProvider logs, Func<Microsoft.AspNetCore.Connections.ConnectionContext?, OssuaryIdentity?> selector)
    {
        var options = new OssuaryServerOptions
        {
            IdentitySelector = selector,
            LoggerFactory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug)),
        };
        options.AuthorizedClientKeys.Add(OssuaryIdentity.Generate().PublicKey);
        return options;
    }
}
