using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Loopback.Wire;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>
/// Plain TCP into a Kestrel connection handler (no UseOssuary), NetworkStream client: the ceiling
/// of the path the <c>ossuary</c> target's server side takes, Kestrel's socket transport included.
/// </summary>
internal sealed class KestrelTcpTarget : BenchTarget
{
    private readonly WebApplication _app;

    private KestrelTcpTarget(WebApplication app, IPEndPoint endpoint)
    {
        _app = app;
        EndPoint = endpoint;
    }

    public override string Name => "tcp-kestrel";

    public override string Description => "plain TCP into a Kestrel connection handler";

    public override IPEndPoint EndPoint { get; }

    public static async Task<KestrelTcpTarget> StartAsync()
    {
        KestrelTcpTarget? target = null;
        WebApplication app = await StartKestrelAsync(listen => listen.Run(connection => target!.ServeAsync(connection))).ConfigureAwait(false);
        target = new KestrelTcpTarget(app, KestrelEndPoint(app));
        return target;
    }

    /// <summary>
    /// A Kestrel server on 127.0.0.1 with one listener configured by <paramref name="configure"/>, logging
    /// off; with <paramref name="largeBlocks"/>, its transport receives into 64 KiB blocks (<c>AddLargeBlockMemoryPool</c>).
    /// </summary>
    public static async Task<WebApplication> StartKestrelAsync(Action<Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions> configure, bool largeBlocks = false)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        if (largeBlocks)
        {
            builder.Services.AddLargeBlockMemoryPool();
        }
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, configure));
        WebApplication app = builder.Build();
        await app.StartAsync().ConfigureAwait(false);
        return app;
    }

    public static IPEndPoint KestrelEndPoint(WebApplication app)
    {
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new IPEndPoint(IPAddress.Loopback, new Uri(address).Port);
    }

    public override async Task<IBenchClient> ConnectAsync(CancellationToken cancellationToken)
    {
        Socket socket = await TcpTarget.ConnectSocketAsync(EndPoint, cancellationToken).ConfigureAwait(false);
        return new StreamBenchClient(new NetworkStream(socket, ownsSocket: true));
    }

    public override async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    private async Task ServeAsync(ConnectionContext connection)
    {
        try
        {
            await BenchWire.ServeAsync(connection.Transport, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            ReportServerError(ex);
        }
    }
}
