using System.Security.Cryptography;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

/// <summary>
/// One key serves both directions, so a peer whose handshake nonce equals ours would make both
/// sides encrypt under one keystream. Such a handshake (our own reflected back, or a chosen
/// nonce) is refused with a reset, before any key agreement.
/// </summary>
public class ReflectedNonceTests
{
    private const int NonceOffset = Wire.HeaderSize + HandshakeBody.NonceOffset;

    [Fact]
    public void AServerHandshakeCarryingTheClientsOwnNonceResetsTheClientWithInvalidKey()
    {
        using SessionPair pair = SessionPair.Create();
        byte[] clientHandshake = SessionPair.NextPacket(pair.Client);
        SessionPair.Receive(pair.Server, clientHandshake);
        byte[] serverHandshake = SessionPair.NextPacket(pair.Server);
        clientHandshake.AsSpan(NonceOffset, SessionNonce.Size).CopyTo(serverHandshake.AsSpan(NonceOffset));

        OssuaryReceiveResult result = SessionPair.Receive(pair.Client, serverHandshake);

        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.InvalidKey), (result.Status, result.Reason));
        Assert.Null(pair.Client.RemotePublicKey);
        Assert.Equal(Wire.Reset, Wire.Type(SessionPair.NextPacket(pair.Client)));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AClientHandshakeCarryingTheServersOwnNonceResetsTheServerWithInvalidKey(bool reflected)
    {
        using var serverIdentity = OssuaryIdentity.Generate();
        using var client = new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.Client });
        byte[] serverNonce = RandomNumberGenerator.GetBytes(SessionNonce.Size);

        // The server draws its challenge, its ephemeral secret, then its nonce.
        var draws = new ScriptedRandomSource([RandomNumberGenerator.GetBytes(32), RandomNumberGenerator.GetBytes(32), serverNonce]);
        using var server = new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.UnauthenticatedServer, Identity = serverIdentity }, draws);
        byte[] clientHandshake = SessionPair.NextPacket(client);
        if (reflected)
        {
            serverNonce.CopyTo(clientHandshake.AsSpan(NonceOffset));
        }

        OssuaryReceiveResult result = SessionPair.Receive(server, clientHandshake);

        if (reflected)
        {
            Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.InvalidKey), (result.Status, result.Reason));
            Assert.Equal(Wire.Reset, Wire.Type(SessionPair.NextPacket(server)));
        }
        else
        {
            // The control: the same server answers an honest ClientHandshake, carrying the scripted nonce.
            Assert.Equal(OssuaryReceiveStatus.Handshake, result.Status);
            byte[] serverHandshake = SessionPair.NextPacket(server);
            Assert.Equal(serverNonce, serverHandshake.AsSpan(NonceOffset, SessionNonce.Size).ToArray());
        }
    }
}
