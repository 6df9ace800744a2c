using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>A Kestrel echo server that admits the clients of a watched authorized-keys file, logging Ossuary's events to a fake provider.</summary>
internal static class AuthorizedKeysFileServer
{
    public static Task<KestrelHost> StartAsync(OssuaryIdentity serverKey, string file, FakeLoggerProvider logs) =>
        KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen
                .UseOssuary(o =>
                {
                    o.Identity = serverKey;
                    o.AuthorizedKeysFile = file;
                })
                .UseConnectionHandler<EchoConnectionHandler>()),
            builder => builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug));

    /// <summary>Waits until the file has been reloaded with <paramref name="keys"/> keys (event 21).</summary>
    public static Task WaitForReloadAsync(FakeLoggerProvider logs, int keys) =>
        HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Id.Id == 21 && r.Message.EndsWith($": {keys} keys.", StringComparison.Ordinal)));
}
