using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A setting from configuration that fails validation is named by its path in the section the options
/// are bound from (the README's <c>Ossuary:Devices</c>), so the operator edits the key that is read:
/// a timeout, the keep-alive, the mode, and each entry of a key list by its own key, not by its place
/// in the list the binder made (entries <c>0</c> and <c>2</c>, or named ones, are items 0 and 1 there).
/// </summary>
public sealed class ConfigurationSettingPathTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-paths-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    public static TheoryData<string, string?, string> ServerSettings => new()
    {
        { "HandshakeTimeout", "00:00:00", "Ossuary:Devices:HandshakeTimeout" },
        { "HandshakeStepTimeout", "-00:00:01", "Ossuary:Devices:HandshakeStepTimeout" },
        { "TcpKeepAlive", "00:00:00.500", "Ossuary:Devices:TcpKeepAlive" },
        { "Mode", "2", "Ossuary:Devices:Mode" },
        { "Mode", "Unauthenticated", "Ossuary:Devices:Mode" }, // with the allow-list it would ignore
        { "AuthorizedClientKeys:2", "0000000000000000000000000000000000000000000000000000000000000000", "Ossuary:Devices:AuthorizedClientKeys:2" },
        { "AuthorizedClientKeys:2", "00112233", "Ossuary:Devices:AuthorizedClientKeys:2" },
        { "AuthorizedClientKeys:2:Key", "00112233", "Ossuary:Devices:AuthorizedClientKeys:2" },
    };

    [Theory]
    [MemberData(nameof(ServerSettings))]
    public void AServerSettingThatFailsValidationIsNamedByItsPath(string setting, string? value, string path)
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        OptionsValidationException invalid = ServerRefuses(new()
        {
            ["Ossuary:Devices:IdentityKeyFile"] = WriteKeyFile(serverKey),
            ["Ossuary:Devices:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString(),
            [$"Ossuary:Devices:{setting}"] = value,
        });

        Assert.Contains(path, invalid.Message);
    }

    public static TheoryData<string, string?, string> ClientSettings => new()
    {
        { "ConnectTimeout", "00:00:00", "Gateway:Uplink:ConnectTimeout" },
        { "HandshakeTimeout", "-00:00:01", "Gateway:Uplink:HandshakeTimeout" },
        { "TcpKeepAlive", "10:00:00", "Gateway:Uplink:TcpKeepAlive" },
        { "TrustedServerKeys:primary", "0100000000000000000000000000000000000000000000000000000000000000", "Gateway:Uplink:TrustedServerKeys:primary" },
    };

    [Theory]
    [MemberData(nameof(ClientSettings))]
    public void AClientSettingThatFailsValidationIsNamedByItsPath(string setting, string? value, string path)
    {
        using var serverKey = OssuaryIdentity.Generate();
        OptionsValidationException invalid = Assert.Throws<OptionsValidationException>(() => BindClient(new()
        {
            ["Gateway:Uplink:TrustedServerKeys:backup"] = serverKey.PublicKey.ToString(),
            [$"Gateway:Uplink:{setting}"] = value,
        }));

        Assert.Contains(path, invalid.Message);
    }

    [Theory]
    [InlineData("IdentityKeyFile")]
    [InlineData("AuthorizedKeysFile")]
    public void AServerKeyFileThatCannotBeReadIsNamedByItsPath(string setting)
    {
        // The message named the file ("Could not find file '.../missing.key'") and not the setting: with
        // the same file named in two sections (the README's Devices and Operators), which one to fix?
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        OptionsValidationException invalid = ServerRefuses(new()
        {
            ["Ossuary:Devices:IdentityKeyFile"] = setting == "IdentityKeyFile" ? Path.Combine(_folder, "missing.key") : WriteKeyFile(serverKey),
            ["Ossuary:Devices:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString(),
            ["Ossuary:Devices:AuthorizedKeysFile"] = setting == "AuthorizedKeysFile" ? Path.Combine(_folder, "missing.keys") : null,
        });

        Assert.Contains($"Ossuary:Devices:{setting}", invalid.Message);
        Assert.Contains("missing", invalid.Message); // and the file, as before
    }

    [Fact]
    public void AClientKeyFileThatCannotBeReadIsNamedByItsPath()
    {
        using var serverKey = OssuaryIdentity.Generate();
        OptionsValidationException invalid = Assert.Throws<OptionsValidationException>(() => BindClient(new()
        {
            ["Gateway:Uplink:TrustedServerKeys:0"] = serverKey.PublicKey.ToString(),
            ["Gateway:Uplink:IdentityKeyFile"] = Path.Combine(_folder, "missing.key"),
        }));

        Assert.Contains("Gateway:Uplink:IdentityKeyFile", invalid.Message);
        Assert.Contains("missing.key", invalid.Message);
    }

    [Theory]
    [InlineData("HandshakeTimeout", "30")]
    [InlineData("HandshakeStepTimeout", "3")]
    [InlineData("TcpKeepAlive", "60")]
    public void AServerDurationWrittenAsABareNumberIsRefusedSayingItIsDays(string setting, string value)
    {
        // TimeSpan reads a bare number as days: a HandshakeTimeout of "30" held a silent client's
        // handshake for 30 days, and a TcpKeepAlive of "60" was refused as out of range without saying why.
        using var serverKey = OssuaryIdentity.Generate();
        OptionsValidationException invalid = ServerRefuses(new()
        {
            ["Ossuary:Devices:IdentityKeyFile"] = WriteKeyFile(serverKey),
            ["Ossuary:Devices:Mode"] = "Unauthenticated",
            [$"Ossuary:Devices:{setting}"] = value,
        });

        Assert.Contains($"Ossuary:Devices:{setting} is '{value}', which configuration reads as {value} days", invalid.Message);
        Assert.Contains("00:00:30 is 30 seconds", invalid.Message);
    }

    [Theory]
    [InlineData("ConnectTimeout", "30")]
    [InlineData("HandshakeTimeout", "10")]
    public void AClientDurationWrittenAsABareNumberIsRefusedSayingItIsDays(string setting, string value)
    {
        using var serverKey = OssuaryIdentity.Generate();
        OptionsValidationException invalid = Assert.Throws<OptionsValidationException>(() => BindClient(new()
        {
            ["Gateway:Uplink:TrustedServerKeys:0"] = serverKey.PublicKey.ToString(),
            [$"Gateway:Uplink:{setting}"] = value,
        }));

        Assert.Contains($"Gateway:Uplink:{setting} is '{value}', which configuration reads as {value} days", invalid.Message);
    }

    [Fact]
    public void DaysWrittenAsADurationAreAccepted()
    {
        // Only the bare number is refused: a timeout as good as forever stays possible, written out.
        OssuaryClientOptions bound = BindClient(new()
        {
            ["Gateway:Uplink:TrustedServerKeys:0"] = new string('1', 64),
            ["Gateway:Uplink:ConnectTimeout"] = "30.00:00:00",
        });

        Assert.Equal(TimeSpan.FromDays(30), bound.ConnectTimeout);
    }

    /// <summary>The validation failure of server options "devices" bound from <c>Ossuary:Devices</c> in <paramref name="settings"/>.</summary>
    private static OptionsValidationException ServerRefuses(Dictionary<string, string?> settings)
    {
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddOssuaryServer(configuration.GetSection("Ossuary:Devices"), "devices");
        using ServiceProvider provider = services.BuildServiceProvider();
        return Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptionsMonitor<OssuaryServerOptions>>().Get("devices"));
    }

    /// <summary>Client options bound from <c>Gateway:Uplink</c> in <paramref name="settings"/> and validated.</summary>
    private static OssuaryClientOptions BindClient(Dictionary<string, string?> settings)
    {
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddOssuaryClient(configuration.GetSection("Gateway:Uplink"));
        using ServiceProvider provider = services.BuildServiceProvider();
        return provider.GetRequiredService<IOptions<OssuaryClientOptions>>().Value;
    }

    private string WriteKeyFile(OssuaryIdentity identity)
    {
        string path = Path.Combine(_folder, $"{Guid.NewGuid():N}.key");
        OssuarySecretKeyFile.Write(path, identity);
        return path;
    }
}
