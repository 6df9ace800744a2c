using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Loopback.Wire;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>A target whose server is a Kestrel host on 127.0.0.1 answering the bench protocol, logging off.</summary>
internal abstract class KestrelBenchTarget : BenchTarget
{
    private WebApplication? _app;
    private IPEndPoint? _endpoint;
    private int _open;

    public override IPEndPoint EndPoint => _endpoint ?? throw new InvalidOperationException("The Kestrel server has not started.");

    /// <summary>Connections inside the listener's middleware (UseOssuary's handshake and teardown included).</summary>
    public override int OpenServerConnections => Volatile.Read(ref _open);

    public override async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync().ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Starts the server: <paramref name="configure"/> adds middleware in front of the bench handler;
    /// with <paramref name="largeBlocks"/>, the transport receives into 64 KiB blocks (<c>AddLargeBlockMemoryPool</c>);
    /// <paramref name="https"/> enables <c>UseHttps</c>, which the slim builder leaves out.
    /// </summary>
    protected async Task StartKestrelAsync(Action<ListenOptions> configure, bool largeBlocks = false, bool https = false)
    {
        // The content root defaults to the current directory, which the host watches for
        // appsettings.json with one inotify watch per subdirectory (17,674 from /tmp here): the
        // program's own directory keeps a bench started from anywhere as cheap as from the repository.
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        if (https)
        {
            builder.WebHost.UseKestrelHttpsConfiguration();
        }

        if (largeBlocks)
        {
            builder.Services.AddLargeBlockMemoryPool();
        }

        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.Use(next => async connection =>
            {
                Interlocked.Increment(ref _open);
                try
                {
                    await next(connection).ConfigureAwait(false);
                }
                finally
                {
                    Interlocked.Decrement(ref _open);
                }
            });
            configure(listen);
            listen.Run(ServeAsync);
        }));
        _app = builder.Build();
        await _app.StartAsync().ConfigureAwait(false);
        string address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        _endpoint = new IPEndPoint(IPAddress.Loopback, new Uri(address).Port);
    }

    /// <summary>The server's end of one connection: the bench protocol (<see cref="BenchWire"/>) unless a target says otherwise.</summary>
    protected virtual Task ServeConnectionAsync(System.IO.Pipelines.IDuplexPipe transport) => BenchWire.ServeAsync(transport, CancellationToken.None);

    private async Task ServeAsync(ConnectionContext connection)
    {
        try
        {
            await ServeConnectionAsync(connection.Transport).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            ReportServerError(ex);
        }
    }
}
