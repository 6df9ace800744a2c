using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A key list written as one value (<c>Ossuary__AuthorizedClientKeys=&lt;hex&gt;</c>, the index
/// forgotten): the binder sees no list items and would drop the key without a word.
/// </summary>
public sealed class ScalarKeyListTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-scalar-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AnAuthorizedClientKeyGivenAsOneValueInsteadOfAListStopsTheHostNamingTheSetting()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        string keyFile = Path.Combine(_folder, "server.key");
        OssuarySecretKeyFile.Write(keyFile, serverKey);
        string authorized = Path.Combine(_folder, "authorized_keys");
        await File.WriteAllTextAsync(authorized, "");

        OptionsValidationException invalid = await Assert.ThrowsAsync<OptionsValidationException>(() => KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["Ossuary:IdentityKeyFile"] = keyFile,
                    ["Ossuary:AuthorizedKeysFile"] = authorized,
                    ["Ossuary:AuthorizedClientKeys"] = clientKey.PublicKey.ToString(),
                });
                builder.Services.AddOssuaryServer(builder.Configuration.GetSection("Ossuary"));
            }));

        Assert.Contains("Ossuary:AuthorizedClientKeys", invalid.Message);
    }
}
