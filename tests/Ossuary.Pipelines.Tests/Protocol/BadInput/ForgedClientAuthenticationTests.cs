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
    public void AnAllZeroClientKeyResetsAnAuthenticatedServerWithInvalidSignature()
    {
        using var client = OssuaryIdentity.Generate();
        using var serverIdentity = OssuaryIdentity.Generate();
        using OssuarySession server = Server(OssuaryRole.AuthenticatedServer, serverIdentity, client.PublicKey);

        OssuaryReceiveResult result = Authenticate(server, client, secrets => secrets.AsSpan(0, 32).Clear());

        // A key nobody can sign for, like any claimed key whose signature fails: checked before the allow-list.
        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.InvalidSignature), (result.Status, result.Reason));
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

    /// <summary>
    /// A client that claims a key it cannot sign for learns nothing about the allow-list: the
    /// authenticated server checks the signature before it looks the key up, so a forged
    /// signature gets the same answer for an admitted key as for any other (the original's order
    /// too). Refusing an unadmitted key before its signature was checked told the forger, by a
    /// Disconnect instead of a Reset, which keys the server admits.
    /// </summary>
    [Fact]
    public void AForgedSignatureGetsTheSameAnswerWhetherTheClaimedKeyIsAdmittedOrNot()
    {
        using var admitted = OssuaryIdentity.Generate();
        using var stranger = OssuaryIdentity.Generate();
        using var forger = OssuaryIdentity.Generate();
        using var serverIdentity = OssuaryIdentity.Generate();
        var answers = new List<(OssuaryReceiveStatus, OssuaryErrorReason, ushort)>();
        foreach (OssuaryPublicKey claimed in new[] { admitted.PublicKey, stranger.PublicKey })
        {
            using OssuarySession server = Server(OssuaryRole.AuthenticatedServer, serverIdentity, admitted.PublicKey);

            OssuaryReceiveResult result = Authenticate(server, forger, secrets => claimed.CopyTo(secrets));

            answers.Add((result.Status, result.Reason, Wire.Type(SessionPair.NextPacket(server))));
            Assert.Null(server.RemotePublicKey);
        }

        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.InvalidSignature, Wire.Reset), answers[0]);
        Assert.Equal(answers[0], answers[1]);
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
