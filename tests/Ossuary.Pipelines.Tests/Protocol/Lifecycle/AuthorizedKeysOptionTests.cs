using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

/// <summary>
/// <see cref="OssuarySessionOptions.AuthorizedKeys"/> is checked when the session is created, as
/// <see cref="OssuarySession.AddAuthorizedKey"/> checks its key: a null entry is a setting to fix,
/// not a <see cref="NullReferenceException"/> out of the first handshake that consults the list.
/// </summary>
public class AuthorizedKeysOptionTests
{
    [Theory]
    [InlineData(OssuaryRole.Client)]
    [InlineData(OssuaryRole.AuthenticatedServer)]
    public void ANullKeyIsRefusedWhenTheSessionIsCreated(OssuaryRole role)
    {
        using var identity = OssuaryIdentity.Generate();
        var options = new OssuarySessionOptions { Role = role, Identity = identity };
        options.AuthorizedKeys.Add(identity.PublicKey);
        options.AuthorizedKeys.Add(null!);

        ArgumentException error = Assert.Throws<ArgumentException>(() => new OssuarySession(options));

        Assert.Contains(nameof(OssuarySessionOptions.AuthorizedKeys), error.Message);
    }
}
