using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// The README's "HTTP over Ossuary" recipe as written: ASP.NET Core endpoints behind
/// <c>UseOssuary</c> on a real Kestrel, <see cref="HttpClient"/> connecting through
/// <see cref="OssuaryStream"/> in <see cref="SocketsHttpHandler.ConnectCallback"/>.
/// </summary>
public class HttpOverOssuaryTests
{
    [Theory]
    [InlineData(HttpProtocols.Http1, "1.1")]
    [InlineData(HttpProtocols.Http2, "2.0")]
    public Task AHandlerSeesTheKeyTheClientProvedAndBodiesGoBothWays(HttpProtocols protocols, string version) => Run(async () =>
    {
        using var keys = new MutualKeys();
        await using WebApplication app = await StartAsync(keys, protocols);
        using HttpClient client = OverOssuary(keys.ClientOptions(), Version.Parse(version));
        string baseAddress = BaseAddress(app);

        HttpResponseMessage who = await client.GetAsync($"{baseAddress}/whoami");
        byte[] upload = RandomNumberGenerator.GetBytes(1 << 20);
        HttpResponseMessage digest = await client.PostAsync($"{baseAddress}/sha256", new ByteArrayContent(upload));

        Assert.Equal(Version.Parse(version), who.Version);
        Assert.Equal(keys.Client.PublicKey.ToString(), await who.Content.ReadAsStringAsync());
        Assert.Equal(Convert.ToHexString(SHA256.HashData(upload)), await digest.Content.ReadAsStringAsync());
    });

    [Fact]
    public Task AClientTheServerDoesNotAdmitGetsAnHttpRequestExceptionCarryingTheRefusal() => Run(async () =>
    {
        using var keys = new MutualKeys();
        using var stranger = OssuaryIdentity.Generate();
        await using WebApplication app = await StartAsync(keys, HttpProtocols.Http1);
        OssuaryClientOptions options = keys.ClientOptions();
        options.Identity = stranger;
        using HttpClient client = OverOssuary(options, HttpVersion.Version11);

        HttpRequestException refused = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync($"{BaseAddress(app)}/whoami"));

        // The server's Disconnect (error): the wire carries no reason, as the README's "A refused client" says.
        OssuaryException cause = Assert.IsType<OssuaryException>(InnermostOssuary(refused));
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, cause.Reason);
        Assert.Equal(0, app.Services.GetRequiredService<RequestCount>().Value);
    });

    [Fact]
    public Task AClientThatDoesNotTrustTheServerNeverSendsTheRequest() => Run(async () =>
    {
        using var keys = new MutualKeys();
        using var impostor = OssuaryIdentity.Generate();
        await using WebApplication app = await StartAsync(keys, HttpProtocols.Http1);
        var options = new OssuaryClientOptions { Identity = keys.Client };
        options.TrustedServerKeys.Add(impostor.PublicKey);
        using HttpClient client = OverOssuary(options, HttpVersion.Version11);

        HttpRequestException refused = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync($"{BaseAddress(app)}/whoami"));

        Assert.Equal(HttpRequestError.ConnectionError, refused.HttpRequestError);
        Assert.Equal(OssuaryErrorReason.UntrustedServer, Assert.IsType<OssuaryException>(InnermostOssuary(refused)).Reason);
        Assert.Equal(0, app.Services.GetRequiredService<RequestCount>().Value);
    });

    [Fact]
    public void TheConnectCallbackHereIsTheReadmes()
    {
        // These tests run a copy of the README's handler; every line of the README's, from
        // `var handler` to the end of its initializer, must be in OverOssuary, in order.
        string readme = File.ReadAllText(Path.Combine(RepositoryPaths.Root(), "README.md"));
        int paragraph = readme.IndexOf("`HttpClient` opens its connections through `OssuaryStream`", StringComparison.Ordinal);
        Assert.True(paragraph >= 0, "The README has no paragraph on HttpClient over OssuaryStream.");
        int start = readme.IndexOf("var handler", paragraph, StringComparison.Ordinal);
        string[] handler = readme[start..readme.IndexOf("\n};", start, StringComparison.Ordinal)].Split('\n');
        string[] copy = File.ReadAllLines(Path.Combine(RepositoryPaths.Root(), "tests", "Ossuary.Pipelines.Tests", "Transport", "HttpOverOssuaryTests.cs"))
            .Select(line => line.Trim()).ToArray();
        int at = Array.FindIndex(copy, line => line.StartsWith("private static HttpClient OverOssuary", StringComparison.Ordinal));
        foreach (string line in handler.Select(line => line.Trim()).Where(line => line.Length > 0))
        {
            int found = Array.IndexOf(copy, line, at + 1);
            Assert.True(found > at, $"The README's HttpClient recipe has '{line}', which OverOssuary lacks (or has out of order): update the copy, then run it.");
            at = found;
        }
    }

    private static async Task<WebApplication> StartAsync(MutualKeys keys, HttpProtocols protocols)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<RequestCount>();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.Protocols = protocols;
            listen.UseOssuary(o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)));
        }));
        WebApplication app = builder.Build();
        app.Use((context, next) =>
        {
            context.RequestServices.GetRequiredService<RequestCount>().Add();
            return next(context);
        });
        app.MapGet("/whoami", (HttpContext context) =>
            context.Features.Get<IOssuaryConnectionFeature>()?.RemotePublicKey?.ToString() ?? "anonymous");
        app.MapPost("/sha256", async (HttpContext context) =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] buffer = new byte[8192];
            int read;
            while ((read = await context.Request.Body.ReadAsync(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, read);
            }

            return Convert.ToHexString(hash.GetHashAndReset());
        });
        await app.StartAsync();
        return app;
    }

    /// <summary>The README's client: every connection HttpClient opens is an Ossuary one.</summary>
    private static HttpClient OverOssuary(OssuaryClientOptions options, Version version)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                Socket socket = await OssuaryClient.ConnectSocketAsync(context.DnsEndPoint, options.ConnectTimeout, cancellationToken);
                var stream = new OssuaryStream(new NetworkStream(socket, ownsSocket: true));
                try
                {
                    await stream.AuthenticateAsClientAsync(options, context.DnsEndPoint, cancellationToken);
                    return stream;
                }
                catch
                {
                    await stream.DisposeAsync();
                    throw;
                }
            },
        };
        return new HttpClient(handler)
        {
            DefaultRequestVersion = version,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact, // HTTP/2 by prior knowledge: no ALPN without TLS
        };
    }

    private static string BaseAddress(WebApplication app)
    {
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        return $"http://127.0.0.1:{address.Port}";
    }

    private static Exception? InnermostOssuary(Exception exception)
    {
        for (Exception? current = exception; current is not null; current = current.InnerException)
        {
            if (current is OssuaryException)
            {
                return current;
            }
        }

        return null;
    }

    private static Task Run(Func<Task> test) => test().Within();

    private sealed class RequestCount
    {
        private int _value;

        public int Value => Volatile.Read(ref _value);

        public void Add() => Interlocked.Increment(ref _value);
    }
}
