using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// The README's limit on our own errors ("repeats within a minute log at Debug") for a client that
/// reconnects with the same options, as a retry loop does: each connect must not count as the first.
/// </summary>
public sealed class RepeatedClientFaultTests : IDisposable
{
    private readonly FakeLoggerProvider _logs = new();
    private readonly ServiceProvider _services;

    public RepeatedClientFaultTests()
    {
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.AddProvider(_logs).SetMinimumLevel(LogLevel.Debug));
        _services = services.BuildServiceProvider();
    }

    public void Dispose() => _services.Dispose();

    [Fact]
    public async Task ASecondConnectWhoseTrustCallbackThrowsTheSameWayIsLoggedAtDebug()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, clientKey)));
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());
        var options = new OssuaryClientOptions
        {
            Identity = clientKey,
            TrustServer = (_, _) => throw new InvalidOperationException("the trust store is down"),
            LoggerFactory = _services.GetRequiredService<ILoggerFactory>(),
        };

        await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(endpoint, options).Within());
        await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(endpoint, options).Within());

        LogLevel[] faults = [.. _logs.Collector.GetSnapshot().Where(r => r.Id.Id == 6).Select(r => r.Level)];
        Assert.Equal([LogLevel.Error, LogLevel.Debug], faults);
    }
}
