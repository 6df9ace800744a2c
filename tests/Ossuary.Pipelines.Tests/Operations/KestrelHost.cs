using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A real Kestrel host whose listeners, services and configuration a test sets up itself, the way
/// an application's Program.cs would; the echo handler and its log come with it.
/// </summary>
internal sealed class KestrelHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private KestrelHost(WebApplication app) => _app = app;

    public IServiceProvider Services => _app.Services;

    public EchoLog Log => _app.Services.GetRequiredService<EchoLog>();

    /// <summary>The addresses Kestrel bound, in listener order (ports resolved).</summary>
    public IReadOnlyList<string> Addresses =>
        [.. _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses];

    /// <summary>The port of the <paramref name="index"/>-th TCP listener.</summary>
    public int Port(int index = 0) => new Uri(Addresses[index]).Port;

    public static async Task<KestrelHost> StartAsync(Action<KestrelServerOptions> listen, Action<WebApplicationBuilder>? configure = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<EchoLog>();
        configure?.Invoke(builder);
        builder.WebHost.ConfigureKestrel(listen);
        WebApplication app = builder.Build();
        try
        {
            await app.StartAsync().Within();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        return new KestrelHost(app);
    }

    /// <summary>An echo server on a loopback port behind <c>UseOssuary</c>, with <paramref name="identity"/>, admitting <paramref name="authorized"/>.</summary>
    public static Task<KestrelHost> StartEchoAsync(OssuaryIdentity identity, params OssuaryPublicKey[] authorized) =>
        StartAsync(k => k.Listen(System.Net.IPAddress.Loopback, 0, listen => listen
            .UseOssuary(o =>
            {
                o.Identity = identity;
                foreach (OssuaryPublicKey key in authorized)
                {
                    o.AuthorizedClientKeys.Add(key);
                }
            })
            .UseConnectionHandler<EchoConnectionHandler>()));

    /// <summary>
    /// A server on a loopback port behind <c>UseOssuary</c>, with <paramref name="identity"/>, admitting
    /// <paramref name="client"/>, whose connections <paramref name="handler"/> takes; <paramref name="closeWait"/>, if given,
    /// in place of the connections' 5 s wait for their client as they end (see <c>ShortCloseWait</c>).
    /// </summary>
    public static Task<KestrelHost> StartOssuaryAsync(OssuaryIdentity identity, OssuaryPublicKey client, Func<ConnectionContext, Task> handler, Action<WebApplicationBuilder>? configure = null, TimeSpan? closeWait = null) =>
        StartAsync(
            k => k.Listen(System.Net.IPAddress.Loopback, 0, listen =>
            {
                listen.UseOssuary(o =>
                {
                    o.Identity = identity;
                    o.AuthorizedClientKeys.Add(client);
                    o.CloseWait = closeWait ?? o.CloseWait;
                });
                listen.Run(handler);
            }),
            configure);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Steps the operations tests share.</summary>
internal static class Echo
{
    /// <summary>Sends <paramref name="text"/> and asserts it comes back.</summary>
    public static async Task RoundTripAsync(Microsoft.AspNetCore.Connections.ConnectionContext connection, string text = "ping")
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(text);
        await connection.Transport.Output.WriteAsync(bytes).Within();
        Assert.Equal(bytes, await PipeReads.ReadExactlyAsync(connection.Transport.Input, bytes.Length).Within());
    }

    /// <summary>Asserts that the server refused the connection: its first read fails with ConnectionFailed.</summary>
    public static async Task AssertRefusedAsync(Microsoft.AspNetCore.Connections.ConnectionContext connection)
    {
        OssuaryException refused = await Assert.ThrowsAsync<OssuaryException>(() => connection.Transport.Input.ReadAsync().AsTask().Within());
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, refused.Reason);
    }

    public static OssuaryClientOptions ClientOptions(OssuaryIdentity identity, params OssuaryPublicKey[] trusted)
    {
        var options = new OssuaryClientOptions { Identity = identity };
        foreach (OssuaryPublicKey key in trusted)
        {
            options.TrustedServerKeys.Add(key);
        }

        return options;
    }

    /// <summary>
    /// Asserts that the server refuses <paramref name="refused"/> and still serves <paramref name="served"/>,
    /// both trusting <paramref name="server"/>: what a revoked key and a kept one see.
    /// </summary>
    public static async Task AssertRefusedAndServedAsync(System.Net.EndPoint endpoint, OssuaryIdentity refused, OssuaryIdentity served, OssuaryPublicKey server)
    {
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(endpoint, ClientOptions(refused, server)).Within();
        await AssertRefusedAsync(connection);
        await (await ConnectAndEchoAsync(endpoint, ClientOptions(served, server))).DisposeAsync();
    }

    /// <summary>Connects and echoes once: the server admitted this client.</summary>
    public static async Task<OssuaryClientConnection> ConnectAndEchoAsync(System.Net.EndPoint endpoint, OssuaryClientOptions options)
    {
        OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(endpoint, options).Within();
        await RoundTripAsync(connection);
        return connection;
    }
}
