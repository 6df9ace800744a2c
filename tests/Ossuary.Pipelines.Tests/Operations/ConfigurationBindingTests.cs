using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using System.ComponentModel;
using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>Issue 14, item 3: options from DI and configuration, validated at start-up.</summary>
public sealed class ConfigurationBindingTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-config-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AServerConfiguredFromJsonWithAKeyFileAndHexKeysAdmitsTheListedClient()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        string keyFile = WriteKeyFile(serverKey);
        string json = Path.Combine(_folder, "appsettings.json");
        await File.WriteAllTextAsync(json, $$"""
            {
              "Ossuary": {
                "IdentityKeyFile": "{{keyFile}}",
                "AuthorizedClientKeys": [ "{{clientKey.PublicKey}}" ],
                "HandshakeTimeout": "00:00:20",
                "TcpKeepAlive": "00:02:00",
                "MaxPendingHandshakes": 100
              }
            }
            """);

        await using KestrelHost host = await KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary().UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                builder.Configuration.AddJsonFile(json);
                builder.Services.AddOssuaryServer(builder.Configuration.GetSection("Ossuary"));
            });
        var endpoint = new IPEndPoint(IPAddress.Loopback, host.Port());

        await using (OssuaryClientConnection admitted = await Echo.ConnectAndEchoAsync(endpoint, Echo.ClientOptions(clientKey, serverKey.PublicKey)))
        {
            Assert.Equal(serverKey.PublicKey, admitted.Ossuary.RemotePublicKey); // the identity came from the key file
        }

        await using OssuaryClientConnection stranger = await OssuaryClient.ConnectAsync(endpoint, Echo.ClientOptions(strangerKey, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(stranger);
        Assert.Equal(TimeSpan.FromSeconds(20), host.Services.GetRequiredService<IOptions<OssuaryServerOptions>>().Value.HandshakeTimeout);
        Assert.Equal(TimeSpan.FromMinutes(2), host.Services.GetRequiredService<IOptions<OssuaryServerOptions>>().Value.TcpKeepAlive);
        Assert.Equal(100, host.Services.GetRequiredService<IOptions<OssuaryServerOptions>>().Value.MaxPendingHandshakes);
    }

    [Fact]
    public async Task AuthorizedClientKeysBindFromEnvironmentVariables()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        string prefix = $"OSSUARY_TEST_{Guid.NewGuid():N}_";
        Environment.SetEnvironmentVariable(prefix + "Ossuary__IdentityKeyFile", WriteKeyFile(serverKey));
        Environment.SetEnvironmentVariable(prefix + "Ossuary__AuthorizedClientKeys__0", clientKey.PublicKey.ToString());
        try
        {
            await using KestrelHost host = await KestrelHost.StartAsync(
                k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary().UseConnectionHandler<EchoConnectionHandler>()),
                builder =>
                {
                    builder.Configuration.AddEnvironmentVariables(prefix);
                    builder.Services.AddOssuaryServer(builder.Configuration.GetSection("Ossuary"));
                });

            await using OssuaryClientConnection connection = await Echo.ConnectAndEchoAsync(
                new IPEndPoint(IPAddress.Loopback, host.Port()), Echo.ClientOptions(clientKey, serverKey.PublicKey));
            Assert.Equal(clientKey.PublicKey, Assert.Single(host.Log.Features)!.RemotePublicKey);
        }
        finally
        {
            Environment.SetEnvironmentVariable(prefix + "Ossuary__IdentityKeyFile", null);
            Environment.SetEnvironmentVariable(prefix + "Ossuary__AuthorizedClientKeys__0", null);
        }
    }

    [Fact]
    public void TheReflectionBinderFillsAuthorizedClientKeysFromHexThroughTheTypeConverter()
    {
        using var clientKey = OssuaryIdentity.Generate();
        IConfiguration configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Ossuary:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString().ToUpperInvariant() })
            .Build();
        var options = new OssuaryServerOptions();

        configuration.GetSection("Ossuary").Bind(options);

        Assert.Equal(clientKey.PublicKey, Assert.Single(options.AuthorizedClientKeys));
    }

    [Fact]
    public void PublicKeysParseAsSpanParsableAndConvertBothWays()
    {
        using var key = OssuaryIdentity.Generate();
        string hex = key.PublicKey.ToString();

        Assert.Equal(key.PublicKey, ParseAs<OssuaryPublicKey>(hex));
        Assert.False(OssuaryPublicKey.TryParse("not a key", null, out _));
        TypeConverter converter = TypeDescriptor.GetConverter(typeof(OssuaryPublicKey));
        Assert.Equal(key.PublicKey, converter.ConvertFromInvariantString(hex));
        Assert.Equal(hex, converter.ConvertToInvariantString(key.PublicKey));
        Assert.Throws<FormatException>(() => converter.ConvertFromInvariantString("abc"));

        static T ParseAs<T>(string text) where T : ISpanParsable<T> => T.Parse(text.AsSpan(), null);
    }

    [Fact]
    public async Task ValidateOnStartStopsAServerWhoseConfigurationNamesNoIdentity()
    {
        using var clientKey = OssuaryIdentity.Generate();

        OptionsValidationException invalid = await Assert.ThrowsAsync<OptionsValidationException>(() => KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Ossuary:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString() });
                builder.Services.AddOssuaryServer(builder.Configuration.GetSection("Ossuary"));
            }));

        Assert.Contains("IdentityKeyFile", invalid.Message);
    }

    [Fact]
    public async Task AMissingIdentityOrKeyListIsNamedInTheSectionTheOptionsAreBoundFrom()
    {
        // The README binds Ossuary:Devices and Ossuary:Client: a message that points at
        // Ossuary:IdentityKeyFile or Ossuary:Client:TrustedServerKeys sends the operator to a setting
        // nothing reads, and the host fails again the same way.
        using var clientKey = OssuaryIdentity.Generate();
        OptionsValidationException server = await Assert.ThrowsAsync<OptionsValidationException>(() => KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Ossuary:Devices:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString() });
                builder.Services.AddOssuaryServer(builder.Configuration.GetSection("Ossuary:Devices"), "devices");
            }));
        IConfiguration configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Gateway:Uplink:IdentityKeyFile"] = WriteKeyFile(clientKey) })
            .Build();
        var services = new ServiceCollection();
        services.AddOssuaryClient(configuration.GetSection("Gateway:Uplink"));
        await using ServiceProvider provider = services.BuildServiceProvider();
        OptionsValidationException client = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<OssuaryClientOptions>>().Value);

        Assert.Contains("Ossuary:Devices:IdentityKeyFile", server.Message);
        Assert.DoesNotContain("Ossuary:IdentityKeyFile", server.Message);
        Assert.Contains("Gateway:Uplink:TrustedServerKeys", client.Message);
        Assert.DoesNotContain("Ossuary:Client", client.Message);
    }

    [Fact]
    public async Task ValidateOnStartNamesAMalformedKeyByItsConfigurationPath()
    {
        using var serverKey = OssuaryIdentity.Generate();

        OptionsValidationException invalid = await Assert.ThrowsAsync<OptionsValidationException>(() => KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["Ossuary:IdentityKeyFile"] = WriteKeyFile(serverKey),
                    ["Ossuary:AuthorizedClientKeys:0"] = "00112233", // truncated by a bad paste
                });
                builder.Services.AddOssuaryServer(builder.Configuration.GetSection("Ossuary"));
            }));

        Assert.Contains("Ossuary:AuthorizedClientKeys:0", invalid.Message);
    }

    // The anonymous key (what a client without an identity sends) and all zeros: no client can prove
    // either, so an allow-list entry for one admits nobody while it looks like it admits someone.
    [Theory]
    [InlineData("0100000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("0000000000000000000000000000000000000000000000000000000000000000")]
    public async Task ValidateOnStartRefusesAnAuthorizedClientKeyNoClientCanProve(string unprovable)
    {
        using var serverKey = OssuaryIdentity.Generate();

        OptionsValidationException invalid = await Assert.ThrowsAsync<OptionsValidationException>(() => KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["Ossuary:IdentityKeyFile"] = WriteKeyFile(serverKey),
                    ["Ossuary:AuthorizedClientKeys:0"] = unprovable,
                });
                builder.Services.AddOssuaryServer(builder.Configuration.GetSection("Ossuary"));
            }));

        Assert.Contains("AuthorizedClientKeys", invalid.Message);
        Assert.Contains(unprovable, invalid.Message);
    }

    [Fact]
    public async Task ValidationRefusesAClientWhoseConfigurationTrustsNoServer()
    {
        // A TrustedServerKeys section left out (or misspelt): every server would be refused on connect,
        // each at Debug as a peer's doing, so the mistake is reported here, once.
        using var clientKey = OssuaryIdentity.Generate();
        IConfiguration configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Client:IdentityKeyFile"] = WriteKeyFile(clientKey), ["Client:TrustedServerKey:0"] = clientKey.PublicKey.ToString() })
            .Build();
        var services = new ServiceCollection();
        services.AddOssuaryClient(configuration.GetSection("Client"));
        await using ServiceProvider provider = services.BuildServiceProvider();

        OptionsValidationException invalid = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<OssuaryClientOptions>>().Value);
        Assert.Contains("trusts no server", invalid.Message);
        Assert.Contains("TrustedServerKeys", invalid.Message);
    }

    [Theory]
    [InlineData("0100000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("0000000000000000000000000000000000000000000000000000000000000000")]
    public async Task ValidationRefusesATrustedServerKeyNoServerCanProve(string unprovable)
    {
        using var serverKey = OssuaryIdentity.Generate();
        IConfiguration configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Client:TrustedServerKeys:0"] = serverKey.PublicKey.ToString(),
                ["Client:TrustedServerKeys:1"] = unprovable,
            })
            .Build();
        var services = new ServiceCollection();
        services.AddOssuaryClient(configuration.GetSection("Client"));
        await using ServiceProvider provider = services.BuildServiceProvider();

        OptionsValidationException invalid = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<OssuaryClientOptions>>().Value);
        Assert.Contains("TrustedServerKeys", invalid.Message);
        Assert.Contains(unprovable, invalid.Message);
    }

    [Fact]
    public async Task ValidateOnStartReportsAnUnreadableIdentityKeyFile()
    {
        using var clientKey = OssuaryIdentity.Generate();
        string missing = Path.Combine(_folder, "missing.key");

        OptionsValidationException invalid = await Assert.ThrowsAsync<OptionsValidationException>(() => KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                builder.Services.AddOssuaryServer().Configure(o =>
                {
                    o.IdentityKeyFile = missing;
                    o.AuthorizedClientKeys.Add(clientKey.PublicKey);
                });
            }));

        Assert.Contains("missing.key", invalid.Message);
    }

    [Fact]
    public async Task AMistypedOptionsNameSaysNothingConfiguresItRatherThanOnlyThatAKeyIsMissing()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        string keyFile = WriteKeyFile(serverKey);

        InvalidOperationException invalid = await Assert.ThrowsAsync<InvalidOperationException>(() => KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary("device").UseConnectionHandler<EchoConnectionHandler>()),
            builder => builder.Services.AddOssuaryServer("devices").Configure(o =>
            {
                o.IdentityKeyFile = keyFile;
                o.AuthorizedClientKeys.Add(clientKey.PublicKey);
            })));

        Assert.Contains("Nothing configures Ossuary options named 'device'", invalid.Message);
    }

    [Fact]
    public async Task NamedOptionsGiveEachEndpointItsOwnAllowList()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var deviceKey = OssuaryIdentity.Generate();
        using var operatorKey = OssuaryIdentity.Generate();
        string keyFile = WriteKeyFile(serverKey);
        await using KestrelHost host = await KestrelHost.StartAsync(
            k =>
            {
                k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary("devices").UseConnectionHandler<EchoConnectionHandler>());
                k.Listen(IPAddress.Loopback, 0, listen => listen.UseOssuary("operators").UseConnectionHandler<EchoConnectionHandler>());
            },
            builder =>
            {
                builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["Ossuary:Devices:IdentityKeyFile"] = keyFile,
                    ["Ossuary:Devices:AuthorizedClientKeys:0"] = deviceKey.PublicKey.ToString(),
                    ["Ossuary:Operators:IdentityKeyFile"] = keyFile,
                    ["Ossuary:Operators:AuthorizedClientKeys:0"] = operatorKey.PublicKey.ToString(),
                });
                builder.Services.AddOssuaryServer(builder.Configuration.GetSection("Ossuary:Devices"), "devices");
                builder.Services.AddOssuaryServer(builder.Configuration.GetSection("Ossuary:Operators"), "operators");
            });
        var devices = new IPEndPoint(IPAddress.Loopback, host.Port(0));
        var operators = new IPEndPoint(IPAddress.Loopback, host.Port(1));

        await (await Echo.ConnectAndEchoAsync(devices, Echo.ClientOptions(deviceKey, serverKey.PublicKey))).DisposeAsync();
        await (await Echo.ConnectAndEchoAsync(operators, Echo.ClientOptions(operatorKey, serverKey.PublicKey))).DisposeAsync();
        await using OssuaryClientConnection deviceAtOperators = await OssuaryClient.ConnectAsync(operators, Echo.ClientOptions(deviceKey, serverKey.PublicKey)).Within();
        await Echo.AssertRefusedAsync(deviceAtOperators);
    }

    [Fact]
    public async Task AClientConnectionFactoryBindsItsTrustedKeysAndKeyFileFromConfiguration()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverKey, clientKey)));
        IConfiguration configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Client:IdentityKeyFile"] = WriteKeyFile(clientKey),
                ["Client:TrustedServerKeys:0"] = serverKey.PublicKey.ToString(),
                ["Client:ConnectTimeout"] = "00:00:05",
                ["Client:TcpKeepAlive"] = "00:00:45",
            })
            .Build();
        var services = new ServiceCollection();
        services.AddOssuaryClient(configuration.GetSection("Client"));
        await using ServiceProvider provider = services.BuildServiceProvider();

        await using var connection = await provider.GetRequiredService<OssuaryConnectionFactory>()
            .ConnectAsync(new IPEndPoint(IPAddress.Loopback, host.Port())).AsTask().Within();
        await Echo.RoundTripAsync(connection);

        Assert.Equal(TimeSpan.FromSeconds(5), provider.GetRequiredService<IOptions<OssuaryClientOptions>>().Value.ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(45), provider.GetRequiredService<IOptions<OssuaryClientOptions>>().Value.TcpKeepAlive);
    }

    [Fact]
    public void AClientBoundFromASecondSectionIsRefusedRatherThanTrustingTheServersOfBoth()
    {
        // Two AddOssuaryClient(section) calls made one client whose TrustedServerKeys were both
        // sections' keys: the device client trusted the telemetry servers too, without a word.
        using var deviceServer = OssuaryIdentity.Generate();
        using var telemetryServer = OssuaryIdentity.Generate();
        IConfiguration configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Devices:TrustedServerKeys:0"] = deviceServer.PublicKey.ToString(),
                ["Telemetry:TrustedServerKeys:0"] = telemetryServer.PublicKey.ToString(),
            })
            .Build();
        var services = new ServiceCollection();
        services.AddOssuaryClient(configuration.GetSection("Devices"));

        var refused = Assert.Throws<InvalidOperationException>(() => services.AddOssuaryClient(configuration.GetSection("Telemetry")));

        Assert.Contains("'Devices'", refused.Message, StringComparison.Ordinal);
        Assert.Contains("'Telemetry'", refused.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(OssuaryConnectionFactory), refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AServerOptionsNameBoundFromASecondSectionIsRefusedRatherThanAdmittingTheClientsOfBoth()
    {
        var services = new ServiceCollection();
        IConfiguration configuration = new ConfigurationBuilder().Build();
        services.AddOssuaryServer(configuration.GetSection("Ossuary:Devices"), "devices");
        services.AddOssuaryServer(configuration.GetSection("Ossuary:Operators"), "operators"); // a name each: fine

        var refused = Assert.Throws<InvalidOperationException>(() => services.AddOssuaryServer(configuration.GetSection("Ossuary:Operators"), "devices"));

        Assert.Contains("'devices'", refused.Message, StringComparison.Ordinal);
        Assert.Contains("'Ossuary:Devices'", refused.Message, StringComparison.Ordinal);
    }

    private string WriteKeyFile(OssuaryIdentity identity)
    {
        string path = Path.Combine(_folder, $"{Guid.NewGuid():N}.key");
        OssuarySecretKeyFile.Write(path, identity);
        return path;
    }
}
