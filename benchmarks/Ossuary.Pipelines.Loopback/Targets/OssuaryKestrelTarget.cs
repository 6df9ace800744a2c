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
/// </summary>
internal sealed class OssuaryKestrelTarget : BenchTarget
{
    private readonly WebApplication _app;
    private readonly OssuaryClientOptions _clientOptions;

    private OssuaryKestrelTarget(WebApplication app, IPEndPoint endpoint, OssuaryClientOptions clientOptions)
    {
        _app = app;
        EndPoint = endpoint;
        _clientOptions = clientOptions;
    }

    public override string Name => "ossuary";

    public override string Description => "Kestrel + UseOssuary server, OssuaryClient.ConnectAsync client";

    public override IPEndPoint EndPoint { get; }

    public static async Task<OssuaryKestrelTarget> StartAsync(OssuaryKeys keys)
    {
        OssuaryKestrelTarget? target = null;
        WebApplication app = await KestrelTcpTarget.StartKestrelAsync(listen =>
        {
            listen.UseOssuary(keys.ServerOptions());
            listen.Run(connection => target!.ServeAsync(connection));
        }).ConfigureAwait(false);
        target = new OssuaryKestrelTarget(app, KestrelTcpTarget.KestrelEndPoint(app), keys.ClientOptions());
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
