using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Loopback.Wire;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>
/// Ossuary as an application would deploy it: a Kestrel listener with <c>UseOssuary</c> in front
/// of a connection handler, and <see cref="OssuaryClient.ConnectAsync"/> (the pipes client).
/// <c>ossuary-64k</c> is the same with <c>AddLargeBlockMemoryPool</c>, as a bulk-transfer server would run.
/// </summary>
internal sealed class OssuaryKestrelTarget : BenchTarget
{
    private readonly WebApplication _app;
    private readonly OssuaryClientOptions _clientOptions;

    private OssuaryKestrelTarget(WebApplication app, IPEndPoint endpoint, OssuaryClientOptions clientOptions, string name = "ossuary")
    {
        Name = name;
        _app = app;
        EndPoint = endpoint;
        _clientOptions = clientOptions;
    }

    public override string Name { get; }

    public override string Description => Name == "ossuary"
        ? "Kestrel + UseOssuary server, OssuaryClient.ConnectAsync client"
        : "the same, Kestrel with AddLargeBlockMemoryPool (64 KiB transport blocks)";

    public override IPEndPoint EndPoint { get; }

    public static async Task<OssuaryKestrelTarget> StartAsync(OssuaryKeys keys, bool largeBlocks = false)
    {
        OssuaryKestrelTarget? target = null;
        WebApplication app = await KestrelTcpTarget.StartKestrelAsync(listen =>
        {
            listen.UseOssuary(keys.ServerOptions());
            listen.Run(connection => target!.ServeAsync(connection));
        }, largeBlocks).ConfigureAwait(false);
        target = new OssuaryKestrelTarget(app, KestrelTcpTarget.KestrelEndPoint(app), keys.ClientOptions(), largeBlocks ? "ossuary-64k" : "ossuary");
        return target;
    }

    public override async Task<IBenchClient> ConnectAsync(CancellationToken cancellationToken)
    {
        OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(EndPoint, _clientOptions, cancellationToken).ConfigureAwait(false);
        return new PipeBenchClient(connection.Transport, connection.DisposeAsync);
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
