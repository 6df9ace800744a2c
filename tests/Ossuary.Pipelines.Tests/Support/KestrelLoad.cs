using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary><see cref="OssuaryTestServer"/> service hooks for tests that open connections by the thousand.</summary>
internal static class KestrelLoad
{
    /// <summary>
    /// No connection limit (null is Kestrel's default, stated here because the test depends on
    /// it) and a listen backlog well above Kestrel's 512, so near-simultaneous connects queue
    /// instead of being refused.
    /// </summary>
    public static void AcceptMany(IServiceCollection services)
    {
        services.Configure<KestrelServerOptions>(kestrel => kestrel.Limits.MaxConcurrentConnections = null);
        services.Configure<SocketTransportOptions>(sockets => sockets.Backlog = 4096);
    }

    /// <summary>Routes every category's logs (Kestrel's and the host's included) to <paramref name="provider"/> from <paramref name="minimum"/> up.</summary>
    public static Action<IServiceCollection> LogEverythingTo(FakeLoggerProvider provider, LogLevel minimum) =>
        services => services.AddLogging(logging => logging
            .AddProvider(provider)
            .SetMinimumLevel(minimum));
}
