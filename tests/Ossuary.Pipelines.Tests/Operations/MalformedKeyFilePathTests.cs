using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A key-file path that no file can have (a NUL character in it, from JSON's <c>\u0000</c> or a
/// generated setting; an empty path set in code) must stop start-up with the validation failure that
/// names the setting, as an unreadable file does. The options validator let the ArgumentException of
/// the file API through: start-up failed with "Null character in path" (or "The value cannot be an
/// empty string"), naming neither the setting nor the options.
/// </summary>
public sealed class MalformedKeyFilePathTests
{
    private const string Nul = "keys/server\0.key";

    [Theory]
    [InlineData("IdentityKeyFile")]
    [InlineData("AuthorizedKeysFile")]
    public void AServerKeyFilePathWithANulCharacterIsNamedByItsConfigurationKey(string setting)
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        var settings = new Dictionary<string, string?>
        {
            ["Ossuary:Devices:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString(),
            [$"Ossuary:Devices:{setting}"] = Nul,
        };
        if (setting != "IdentityKeyFile")
        {
            settings["Ossuary:Devices:Mode"] = "Authenticated";
        }

        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddOssuaryServer(configuration.GetSection("Ossuary:Devices"), "devices")
            .Configure(o => o.Identity ??= setting == "IdentityKeyFile" ? null : serverKey);
        using ServiceProvider provider = services.BuildServiceProvider();

        OptionsValidationException invalid = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptionsMonitor<OssuaryServerOptions>>().Get("devices"));
        Assert.Contains($"Ossuary:Devices:{setting}", invalid.Message);
    }

    [Fact]
    public void AClientKeyFilePathWithANulCharacterIsNamedByItsConfigurationKey()
    {
        using var serverKey = OssuaryIdentity.Generate();
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Gateway:Uplink:IdentityKeyFile"] = Nul,
            ["Gateway:Uplink:TrustedServerKeys:0"] = serverKey.PublicKey.ToString(),
        }).Build();
        var services = new ServiceCollection();
        services.AddOssuaryClient(configuration.GetSection("Gateway:Uplink"));
        using ServiceProvider provider = services.BuildServiceProvider();

        OptionsValidationException invalid = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<OssuaryClientOptions>>().Value);
        Assert.Contains("Gateway:Uplink:IdentityKeyFile", invalid.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData(Nul)]
    public void AnIdentityKeyFileSetInCodeThatNoFileCanHaveIsAValidationFailure(string path)
    {
        using var clientKey = OssuaryIdentity.Generate();
        var services = new ServiceCollection();
        services.AddOssuaryServer().Configure(o =>
        {
            o.IdentityKeyFile = path;
            o.AuthorizedClientKeys.Add(clientKey.PublicKey);
        });
        using ServiceProvider provider = services.BuildServiceProvider();

        OptionsValidationException invalid = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<OssuaryServerOptions>>().Value);
        Assert.Contains("IdentityKeyFile", invalid.Message);
    }

    /// <summary>
    /// A secret key pasted into <c>IdentityKeyFile</c> in place of its file's name: start-up failed with the file
    /// API's "Could not find file '…/3f2a…'", which wrote the secret into the log. Refused by its form, unrepeated.
    /// </summary>
    [Fact]
    public void ASecretKeyPastedWhereItsFileGoesIsRefusedWithoutBeingRepeated()
    {
        using var secret = OssuaryIdentity.Generate();
        string hex = OssuarySecretKeyFileTestKey(secret);
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Ossuary:Devices:IdentityKeyFile"] = hex,
            ["Ossuary:Devices:Mode"] = "Unauthenticated",
        }).Build();
        var services = new ServiceCollection();
        services.AddOssuaryServer(configuration.GetSection("Ossuary:Devices"), "devices");
        using ServiceProvider provider = services.BuildServiceProvider();

        OptionsValidationException invalid = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptionsMonitor<OssuaryServerOptions>>().Get("devices"));
        Assert.Contains("Ossuary:Devices:IdentityKeyFile", invalid.Message);
        Assert.Contains("the form of a key", invalid.Message);
        Assert.DoesNotContain(hex, invalid.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(hex, invalid.ToString(), StringComparison.OrdinalIgnoreCase);

        var client = new OssuaryClientOptions { IdentityKeyFile = hex.ToUpperInvariant() };
        client.TrustedServerKeys.Add(secret.PublicKey);
        InvalidOperationException refused = Assert.Throws<InvalidOperationException>(() => OssuaryClient.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1), client).GetAwaiter().GetResult());
        Assert.DoesNotContain(hex, refused.ToString(), StringComparison.OrdinalIgnoreCase);
    }

    private static string OssuarySecretKeyFileTestKey(OssuaryIdentity identity)
    {
        string path = Path.Combine(Path.GetTempPath(), $"ossuary-pasted-{Guid.NewGuid():N}.key");
        try
        {
            Ossuary.Pipelines.Trust.OssuarySecretKeyFile.Write(path, identity);
            return File.ReadAllText(path).Trim();
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void UseOssuaryGivenAnAuthorizedKeysFileThatNoFileCanHaveSaysWhichSetting()
    {
        using var serverKey = OssuaryIdentity.Generate();
        var options = new OssuaryServerOptions { Identity = serverKey, AuthorizedKeysFile = Nul };

        InvalidOperationException invalid = Assert.Throws<InvalidOperationException>(() => new ServerPlanSource(options, null, null, "", null, null).Dispose());
        Assert.Contains("AuthorizedKeysFile", invalid.Message);
    }

    /// <summary>
    /// A bare pipe's and a stream's server handshake read the authorized-keys file before they validated
    /// the options, so a path no file can have failed with the file API's ArgumentException (not among
    /// their documented exceptions, and naming no setting), and options the validator refuses (an
    /// unauthenticated server given an allow-list file) failed on the file instead of saying what to fix.
    /// </summary>
    [Theory]
    [InlineData("", OssuaryServerMode.Authenticated)]
    [InlineData(Nul, OssuaryServerMode.Authenticated)]
    [InlineData("no-such-folder/devices.keys", OssuaryServerMode.Unauthenticated)]
    public async Task ABarePipeOrStreamServerValidatesItsOptionsBeforeReadingTheAuthorizedKeysFile(string path, OssuaryServerMode mode)
    {
        using var serverKey = OssuaryIdentity.Generate();
        var options = new OssuaryServerOptions { Identity = serverKey, Mode = mode, AuthorizedKeysFile = path };
        var transport = new System.IO.Pipelines.Pipe();
        var untouched = new Support.DuplexPipe(transport.Reader, transport.Writer);

        InvalidOperationException accept = await Assert.ThrowsAsync<InvalidOperationException>(() => OssuaryDuplexPipe.AcceptAsync(untouched, options));
        Assert.Contains("AuthorizedKeysFile", accept.Message);

        await using var stream = new OssuaryStream(new MemoryStream());
        InvalidOperationException authenticate = await Assert.ThrowsAsync<InvalidOperationException>(() => stream.AuthenticateAsServerAsync(options));
        Assert.Contains("AuthorizedKeysFile", authenticate.Message);
    }
}
