using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines.Integrations;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>
/// Kestrel with <c>UseOssuary</c> (authenticated: only listed devices get through) in front of
/// <see cref="TelemetryConnectionHandler"/>. No HTTP: the listener speaks Ossuary, then readings.
/// </summary>
public sealed class TelemetryServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TelemetryServer(WebApplication app, IPEndPoint endPoint)
    {
        _app = app;
        EndPoint = endPoint;
    }

    /// <summary>Where the server listens (the real port when 0 was asked for).</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>The counts the connection handler keeps.</summary>
    public TelemetryRegistry Registry => _app.Services.GetRequiredService<TelemetryRegistry>();

    /// <summary>Cancelled when the host is asked to stop (Ctrl+C, SIGTERM).</summary>
    public CancellationToken Stopping => _app.Lifetime.ApplicationStopping;

    /// <summary>Starts listening.</summary>
    /// <exception cref="InvalidOperationException">The Ossuary options are invalid (say, no authorized devices).</exception>
    /// <exception cref="IOException">The address is in use.</exception>
    public static async Task<TelemetryServer> StartAsync(TelemetryServerOptions options, TelemetryRegistry? registry = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(options.LogLevel);
        registry ??= new TelemetryRegistry();
        builder.Services.AddSingleton(registry);
        var admitted = options.AuthorizedDevices.ToHashSet();
        if (admitted.Count == 0)
        {
            throw new InvalidOperationException("No authorized devices: an authenticated server would admit nobody.");
        }

        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(options.Address, options.Port, listen =>
        {
            listen.UseOssuary(ossuary =>
            {
                ossuary.Identity = options.Identity;

                // The allow-list as a callback, so that a refused device's key is counted and shown:
                // an operator needs it to admit a new device or to spot a stray one.
                ossuary.AuthorizeClient = (device, _, _) =>
                {
                    bool known = admitted.Contains(device);
                    if (!known)
                    {
                        registry.Refuse(device);
                    }

                    return ValueTask.FromResult(known);
                };
            });
            listen.UseConnectionHandler<TelemetryConnectionHandler>();
        }));

        WebApplication app = builder.Build();
        try
        {
            await app.StartAsync();
        }
        catch
        {
            // Kestrel runs the listen callback, and so UseOssuary's validation, while starting.
            await app.DisposeAsync();
            throw;
        }

        string address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        var port = new Uri(address).Port;
        return new TelemetryServer(app, new IPEndPoint(options.Address, port));
    }

    /// <summary>Stops listening and ends open connections.</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
