using System.Net;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// Two client keys a configured server authorizes (section "Ossuary"), the second of which a test
/// then removes and reloads: what a revocation looks like in an operator's settings.
/// </summary>
internal sealed class KeptAndRevokedClients : IDisposable
{
    public OssuaryIdentity Kept { get; } = OssuaryIdentity.Generate();

    public OssuaryIdentity Revoked { get; } = OssuaryIdentity.Generate();

    /// <summary>Settings that name the server's key file and authorize both clients.</summary>
    public Dictionary<string, string?> Settings(string identityKeyFile) => new()
    {
        ["Ossuary:IdentityKeyFile"] = identityKeyFile,
        ["Ossuary:AuthorizedClientKeys:0"] = Kept.PublicKey.ToString(),
        ["Ossuary:AuthorizedClientKeys:1"] = Revoked.PublicKey.ToString(),
    };

    /// <summary>Removes the revoked client's key from <paramref name="settings"/> (the test reloads them).</summary>
    public static void Revoke(Dictionary<string, string?> settings) => settings.Remove("Ossuary:AuthorizedClientKeys:1");

    /// <summary>Asserts that the revocation took: the revoked client is refused, the kept one still served by <paramref name="server"/>.</summary>
    public Task AssertRevokedAsync(EndPoint endpoint, OssuaryPublicKey server) =>
        Echo.AssertRefusedAndServedAsync(endpoint, refused: Revoked, served: Kept, server);

    public void Dispose()
    {
        Kept.Dispose();
        Revoked.Dispose();
    }
}
