using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A reloaded setting that does not even bind ("HandshakeTimeout": "5 seconds", a misspelt Mode):
/// the options factory throws the binder's InvalidOperationException, not an OptionsValidationException.
/// Before, the options follower re-read the options on a timer and let that exception escape the
/// timer's callback, which ends the process: one typo in a reloaded appsettings.json took the
/// server down. Now it is a refused change like any other: logged at Error (event 24) with the
/// binder's message, the previous options stay, and the options are read again until they bind.
/// </summary>
public sealed class UnbindableReloadTests : IDisposable
{
    private const int OptionsReloadFailed = 24;
    private const int OptionsReloaded = 25;

    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-unbindable-reload-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AServerSurvivesAReloadThatDoesNotBindAndAppliesTheFixedOne()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var keptKey = OssuaryIdentity.Generate();
        using var revokedKey = OssuaryIdentity.Generate();
        string serverKeyFile = Path.Combine(_folder, "server.key");
        OssuarySecretKeyFile.Write(serverKeyFile, serverKey);
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = serverKeyFile,
            ["Ossuary:AuthorizedClientKeys:0"] = keptKey.PublicKey.ToString(),
            ["Ossuary:AuthorizedClientKeys:1"] = revokedKey.PublicKey.ToString(),
        };
        var logs = new FakeLoggerProvider();
        IConfigurationRoot? configuration = null;
        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary().UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                configuration = new ConfigurationBuilder().Add(new MutableSource(settings)).Build();
                builder.Services.AddOssuaryServer(configuration.GetSection("Ossuary"));
                builder.Logging.AddProvider(logs).AddFilter("Ossuary", LogLevel.Debug);
            });
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());

        settings.Remove("Ossuary:AuthorizedClientKeys:1");
        settings["Ossuary:HandshakeTimeout"] = "5 seconds"; // a typo in the same edit
        Assert.ThrowsAny<Exception>(configuration!.Reload); // to the reloader, which a file source would swallow

        await HostilePeerTests.WaitForAsync(() => Records(logs, OptionsReloadFailed).Count > 0);
        FakeLogRecord refused = Assert.Single(Records(logs, OptionsReloadFailed));
        Assert.Equal(LogLevel.Error, refused.Level);
        Assert.Contains("HandshakeTimeout", refused.Exception?.Message);

        settings["Ossuary:HandshakeTimeout"] = "00:00:05"; // fixed
        configuration.Reload();
        await HostilePeerTests.WaitForAsync(() => Records(logs, OptionsReloaded).Count > 0);

        await using OssuaryClientConnection revoked = await OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(revokedKey, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(revoked);
        await (await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(keptKey, serverKey.PublicKey))).DisposeAsync();
    }

    [Fact]
    public async Task AConnectionFactorySurvivesAReloadThatDoesNotBind()
    {
        using var clientKey = OssuaryIdentity.Generate();
        using var serverKey = OssuaryIdentity.Generate();
        string clientKeyFile = Path.Combine(_folder, "client.key");
        OssuarySecretKeyFile.Write(clientKeyFile, clientKey);
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:IdentityKeyFile"] = clientKeyFile,
            ["Ossuary:TrustedServerKeys:0"] = serverKey.PublicKey.ToString(),
        };
        IConfigurationRoot configuration = new ConfigurationBuilder().Add(new MutableSource(settings)).Build();
        var logs = new FakeLoggerProvider();
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        services.AddOssuaryClient(configuration.GetSection("Ossuary"));
        await using ServiceProvider provider = services.BuildServiceProvider();
        OssuaryConnectionFactory factory = provider.GetRequiredService<OssuaryConnectionFactory>();

        settings["Ossuary:ConnectTimeout"] = "thirty seconds";
        Assert.ThrowsAny<Exception>(configuration.Reload);

        await HostilePeerTests.WaitForAsync(() => Records(logs, OptionsReloadFailed).Count > 0);
        FakeLogRecord refused = Assert.Single(Records(logs, OptionsReloadFailed));
        Assert.Equal(LogLevel.Error, refused.Level);
        Assert.Contains("ConnectTimeout", refused.Exception?.Message);
    }

    private static List<FakeLogRecord> Records(FakeLoggerProvider logs, int id) =>
        [.. logs.Collector.GetSnapshot().Where(r => r.Category?.StartsWith("Ossuary", StringComparison.Ordinal) == true && r.Id.Id == id)];
}
