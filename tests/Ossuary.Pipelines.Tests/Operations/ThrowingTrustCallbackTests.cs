using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A trust-on-first-use callback records the key with <c>OssuaryKnownHosts.Add</c>, which throws
/// IOException when the file cannot be written or stays locked: that is this side's failure, for
/// the operator (event 6, Error), not a peer's to be logged at Debug.
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
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, clientKey)));
        var options = new OssuaryClientOptions
        {
            Identity = clientKey,
            TrustServer = (_, _) => throw new IOException("the known-hosts file could not be written"),
            LoggerFactory = _services.GetRequiredService<ILoggerFactory>(),
        };

        OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), options).Within());

        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
        FakeLogRecord fault = Assert.Single(_logs.Collector.GetSnapshot(), r => r.Id.Id == 6);
        Assert.Equal(LogLevel.Error, fault.Level);
        Assert.Equal("the known-hosts file could not be written", fault.Exception?.Message);
        Assert.DoesNotContain(_logs.Collector.GetSnapshot(), r => r.Id.Id == 3);
    }
}
