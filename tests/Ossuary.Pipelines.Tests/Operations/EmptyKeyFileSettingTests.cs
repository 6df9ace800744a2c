using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A key-file setting left empty (<c>Ossuary__IdentityKeyFile=</c>, an override meant to clear it):
/// start-up must stop with the validation failure that names the setting, as for any unreadable key file.
/// </summary>
public sealed class EmptyKeyFileSettingTests
{
    [Fact]
    public async Task AnEmptyIdentityKeyFileSettingStopsTheHostNamingTheSetting()
    {
        using var clientKey = OssuaryIdentity.Generate();

        OptionsValidationException invalid = await Assert.ThrowsAsync<OptionsValidationException>(() => KestrelHost.StartAsync(
            k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseConnectionHandler<EchoConnectionHandler>()),
            builder =>
            {
                builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["Ossuary:IdentityKeyFile"] = "",
                    ["Ossuary:AuthorizedClientKeys:0"] = clientKey.PublicKey.ToString(),
                });
                builder.Services.AddOssuaryServer(builder.Configuration.GetSection("Ossuary"));
            }));

        Assert.Contains("Ossuary:IdentityKeyFile", invalid.Message);
    }
}
