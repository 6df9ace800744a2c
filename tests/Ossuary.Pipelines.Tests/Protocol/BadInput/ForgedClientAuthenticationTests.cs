using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

/// <summary>ClientAuthentication packets built by hand with a real session key: only the identity fields are wrong.</summary>
public class ForgedClientAuthenticationTests
{
    [Fact]
    public void AForgedClientAuthenticationWithAValidSignatureIsAccepted()
    {
        using var client = OssuaryIdentity.Generate();
        using var serverIdentity = OssuaryIdentity.Generate();
        using OssuarySession server = Server(OssuaryRole.AuthenticatedServer, serverIdentity, client.PublicKey);

        OssuaryReceiveResult result = Authenticate(server, client, edit: null);

        Assert.Equal(OssuaryReceiveStatus.Handshake, result.Status);
        Assert.True(server.IsEstablished);
        Assert.Equal(client.PublicKey, server.RemotePublicKey);
    }

    [Theory]
    [InlineData(OssuaryRole.AuthenticatedServer)]
    [InlineData(OssuaryRole.UnauthenticatedServer)]
    public void AnAllZeroSignatureFromAKeyedClientResetsTheServerWithInvalidSignature(OssuaryRole role)
    {
        using var client = OssuaryIdentity.Generate();
        using var serverIdentity = OssuaryIdentity.Generate();
        using OssuarySession server = Server(role, serverIdentity, client.PublicKey);

        OssuaryReceiveResult result = Authenticate(server, client, secrets => secrets.AsSpan(32).Clear());

        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.InvalidSignature), (result.Status, result.Reason));
        Assert.Null(server.RemotePublicKey);
    }

    [Fact]
    public void AnAllZeroClientKeyResetsAnUnauthenticatedServerWithInvalidSignature()
    {
        using var client = OssuaryIdentity.Generate();
        using var serverIdentity = OssuaryIdentity.Generate();
        using OssuarySession server = Server(OssuaryRole.UnauthenticatedServer, serverIdentity);

        OssuaryReceiveResult result = Authenticate(server, client, secrets => secrets.AsSpan(0, 32).Clear());

        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.InvalidSignature), (result.Status, result.Reason));
    }

    [Fact]
    public void AnAllZeroClientKeyIsRefusedByAnAuthenticatedServer()
    {
        using var client = OssuaryIdentity.Generate();
        using var serverIdentity = OssuaryIdentity.Generate();
        using OssuarySession server = Server(OssuaryRole.AuthenticatedServer, serverIdentity, client.PublicKey);

        OssuaryReceiveResult result = Authenticate(server, client, secrets => secrets.AsSpan(0, 32).Clear());

        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.InvalidKey), (result.Status, result.Reason));
    }

    [Fact]
    public void AClaimedKeyThatDidNotMakeTheSignatureResetsTheServerWithInvalidSignature()
    {
        using var client = OssuaryIdentity.Generate();
        using var impostor = OssuaryIdentity.Generate();
        using var serverIdentity = OssuaryIdentity.Generate();
        using OssuarySession server = Server(OssuaryRole.AuthenticatedServer, serverIdentity, client.PublicKey);

        OssuaryReceiveResult result = Authenticate(server, impostor, secrets => client.PublicKey.CopyTo(secrets));

        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.InvalidSignature), (result.Status, result.Reason));
    }

    private static OssuarySession Server(OssuaryRole role, OssuaryIdentity identity, params OssuaryPublicKey[] admitted)
    {
        var options = new OssuarySessionOptions { Role = role, Identity = identity };
        foreach (OssuaryPublicKey key in admitted)
        {
            options.AuthorizedKeys.Add(key);
        }

        return new OssuarySession(options);
    }

    private static OssuaryReceiveResult Authenticate(OssuarySession server, OssuaryIdentity client, Action<byte[]>? edit)
    {
        var forger = new ForgedPeer();
        Assert.Equal(OssuaryReceiveStatus.Handshake, SessionPair.Receive(server, forger.ClientHandshake()).Status);
        byte[] serverHandshake = SessionPair.NextPacket(server);
        return SessionPair.Receive(server, forger.ClientAuthentication(serverHandshake, client, edit));
    }
}
