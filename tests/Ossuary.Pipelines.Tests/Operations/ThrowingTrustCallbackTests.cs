using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A client's trust callback that throws is this side's failure, for the operator (event 6, Error),
/// not a peer's to be logged at Debug: an IOException included, which <c>OssuaryKnownHosts.Add</c>
/// throws when the file cannot be written. The README's limit on our own errors ("repeats within a
/// minute log at Debug") holds for a client that reconnects with the same options, as a retry loop does.
/// </summary>
public sealed class ThrowingTrustCallbackTests : IDisposable
{
    private readonly FakeLoggerProvider _logs = new();
    private readonly ServiceProvider _services;

    public ThrowingTrustCallbackTests()
    {
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.AddProvider(_logs).SetMinimumLevel(LogLevel.Debug));
        _services = services.BuildServiceProvider();
    }

    public void Dispose() => _services.Dispose();

    [Fact]
    public async Task ATrustCallbackThatThrowsAnIOExceptionIsLoggedAsOurFaultAtError()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await StartServerAsync(serverKey, clientKey);
        OssuaryClientOptions options = Options(clientKey, new IOException("the known-hosts file could not be written"));

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(EndPoint(host), options).Within());

        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
        FakeLogRecord fault = Assert.Single(_logs.Collector.GetSnapshot(), r => r.Id.Id == 6);
        Assert.Equal(LogLevel.Error, fault.Level);
        Assert.Equal("the known-hosts file could not be written", fault.Exception?.Message);
        Assert.DoesNotContain(_logs.Collector.GetSnapshot(), r => r.Id.Id == 3);
    }

    [Fact]
    public async Task ASecondConnectWhoseTrustCallbackThrowsTheSameWayIsLoggedAtDebug()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await StartServerAsync(serverKey, clientKey);
        OssuaryClientOptions options = Options(clientKey, new InvalidOperationException("the trust store is down"));

        await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(EndPoint(host), options).Within());
        await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(EndPoint(host), options).Within());

        LogLevel[] faults = [.. _logs.Collector.GetSnapshot().Where(r => r.Id.Id == 6).Select(r => r.Level)];
        Assert.Equal([LogLevel.Error, LogLevel.Debug], faults);
    }

    private static Task<KestrelHost> StartServerAsync(OssuaryIdentity serverKey, OssuaryIdentity clientKey) =>
        KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, clientKey)));

    private static IPEndPoint EndPoint(KestrelHost host) => new(IPAddress.Loopback, host.Port());

    private OssuaryClientOptions Options(OssuaryIdentity clientKey, Exception thrownByTrustServer) => new()
    {
        Identity = clientKey,
        TrustServer = (_, _) => throw thrownByTrustServer,
        LoggerFactory = _services.GetRequiredService<ILoggerFactory>(),
    };
}
