using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>A real Kestrel server on 127.0.0.1 with UseOssuary in front of a connection handler.</summary>
public sealed class OssuaryTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private OssuaryTestServer(WebApplication app, IPEndPoint endpoint)
    {
        _app = app;
        EndPoint = endpoint;
    }

    public IPEndPoint EndPoint { get; }

    public EchoLog Log => _app.Services.GetRequiredService<EchoLog>();

    public IServiceProvider Services => _app.Services;

    /// <summary>A <c>services</c> hook that routes the server's logs to <paramref name="provider"/>, Ossuary's at Debug.</summary>
    public static Action<IServiceCollection> LogTo(Microsoft.Extensions.Logging.Testing.FakeLoggerProvider provider) =>
        services => services.AddLogging(logging => logging
            .AddProvider(provider)
            .AddFilter("Ossuary", LogLevel.Debug));

    public static Task<OssuaryTestServer> StartEchoAsync(Action<OssuaryServerOptions> configure, Action<IServiceCollection>? services = null) =>
        StartAsync<EchoConnectionHandler>(configure, services);

    /// <summary>An echo server with <paramref name="identity"/> that admits exactly <paramref name="client"/>.</summary>
    public static Task<OssuaryTestServer> StartEchoAsync(OssuaryIdentity identity, OssuaryIdentity client) =>
        StartEchoAsync(o =>
        {
            o.Identity = identity;
            o.AuthorizedClientKeys.Add(client.PublicKey);
        });

    public static async Task<OssuaryTestServer> StartAsync<THandler>(Action<OssuaryServerOptions> configure, Action<IServiceCollection>? services = null)
        where THandler : ConnectionHandler
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<EchoLog>();
        services?.Invoke(builder.Services);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.UseOssuary(configure);
            listen.UseConnectionHandler<THandler>();
        }));
        WebApplication app = builder.Build();
        try
        {
            await app.StartAsync();
        }
        catch
        {
            // Kestrel runs the listen callback (and so UseOssuary's validation) while starting.
            await app.DisposeAsync();
            throw;
        }

        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        var uri = new Uri(address);
        return new OssuaryTestServer(app, new IPEndPoint(IPAddress.Loopback, uri.Port));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
