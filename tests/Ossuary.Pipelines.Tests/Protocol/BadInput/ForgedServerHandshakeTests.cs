using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

/// <summary>
/// ServerHandshakes built by hand with a real session key, so only the field under test is wrong:
/// the client must reject an all-zero server key, challenge or signature, and a bad signature.
/// </summary>
public class ForgedServerHandshakeTests
{
    private const int KeyOffset = 0;
    private const int ChallengeOffset = 32;
    private const int SignatureOffset = 64;

    [Fact]
    public void AForgedServerHandshakeWithIntactSecretsIsAccepted()
    {
        using var identity = OssuaryIdentity.Generate();
        using OssuarySession client = TrustingClient(identity);

        OssuaryReceiveResult result = SessionPair.Receive(client, new ForgedPeer().ServerHandshake(SessionPair.NextPacket(client), identity));

        Assert.Equal(OssuaryReceiveStatus.Handshake, result.Status);
        Assert.Equal(identity.PublicKey, client.RemotePublicKey);
        Assert.Equal(Wire.ClientAuthentication, Wire.Type(SessionPair.NextPacket(client)));
        Assert.True(client.IsEstablished);
    }

    [Theory]
    [InlineData(KeyOffset, 32)]
    [InlineData(ChallengeOffset, 32)]
    [InlineData(SignatureOffset, 64)]
    public void AnAllZeroServerSecretResetsTheClientWithInvalidSignature(int offset, int length)
    {
        using var identity = OssuaryIdentity.Generate();
        using OssuarySession client = TrustingClient(identity);
        byte[] packet = new ForgedPeer().ServerHandshake(SessionPair.NextPacket(client), identity, secrets => secrets.AsSpan(offset, length).Clear());

        AssertInvalidSignature(client, SessionPair.Receive(client, packet));
    }

    [Fact]
    public void ASignatureOverTheWrongChallengeResetsTheClientWithInvalidSignature()
    {
        using var identity = OssuaryIdentity.Generate();
        using OssuarySession client = TrustingClient(identity);
        byte[] clientHandshake = SessionPair.NextPacket(client);
        byte[] otherChallenge = Wire.WithByte(clientHandshake, clientHandshake.Length - 1, (byte)~clientHandshake[^1]);

        AssertInvalidSignature(client, SessionPair.Receive(client, new ForgedPeer().ServerHandshake(otherChallenge, identity)));
    }

    [Fact]
    public void AServerKeyThatDidNotMakeTheSignatureResetsTheClientWithInvalidSignature()
    {
        using var identity = OssuaryIdentity.Generate();
        using var impostor = OssuaryIdentity.Generate();
        using OssuarySession client = TrustingClient(identity);
        byte[] packet = new ForgedPeer().ServerHandshake(SessionPair.NextPacket(client), impostor, secrets => identity.PublicKey.CopyTo(secrets));

        AssertInvalidSignature(client, SessionPair.Receive(client, packet));
    }

    private static OssuarySession TrustingClient(OssuaryIdentity server)
    {
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client };
        options.AuthorizedKeys.Add(server.PublicKey);
        return new OssuarySession(options);
    }

    private static void AssertInvalidSignature(OssuarySession client, OssuaryReceiveResult result)
    {
        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.InvalidSignature), (result.Status, result.Reason));
        Assert.Null(client.RemotePublicKey);
        Assert.Equal(Wire.Reset, Wire.Type(SessionPair.NextPacket(client)));
    }
}
