using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

/// <summary>Well-formed packets, with the msg_id the receiver expects, of a type not valid in its state.</summary>
public class OutOfStatePacketTests
{
    [Fact]
    public void EncryptedDataToAServerWaitingForClientHandshakeResetsWithUnexpectedPacket()
    {
        using SessionPair other = SessionPair.Established();
        byte[] data = Wire.WithMessageId(SessionPair.DataPacket(other.Client, "too early"u8), 0);
        using SessionPair pair = SessionPair.Create();

        AssertUnexpected(SessionPair.Receive(pair.Server, data));
    }

    [Fact]
    public void EncryptedDataToAClientWaitingForServerHandshakeResetsWithUnexpectedPacket()
    {
        using SessionPair other = SessionPair.Established();
        byte[] data = Wire.WithMessageId(SessionPair.DataPacket(other.Server, "too early"u8), 0);
        using SessionPair pair = SessionPair.Create();
        SessionPair.NextPacket(pair.Client);

        AssertUnexpected(SessionPair.Receive(pair.Client, data));
    }

    [Fact]
    public void ClientAuthenticationTwiceResetsWithUnexpectedPacket()
    {
        using SessionPair pair = SessionPair.Create();
        SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));
        SessionPair.Receive(pair.Client, SessionPair.NextPacket(pair.Server));
        byte[] authentication = SessionPair.NextPacket(pair.Client);
        Assert.Equal(OssuaryReceiveStatus.Handshake, SessionPair.Receive(pair.Server, authentication).Status);
        Assert.True(pair.Server.IsEstablished);

        AssertUnexpected(SessionPair.Receive(pair.Server, Wire.WithMessageId(authentication, 2)));
    }

    [Fact]
    public void AServerHandshakeSentToAServerResetsWithUnexpectedPacket()
    {
        using SessionPair other = SessionPair.Create();
        SessionPair.Receive(other.Server, SessionPair.NextPacket(other.Client));
        byte[] serverHandshake = SessionPair.NextPacket(other.Server);
        using SessionPair pair = SessionPair.Create();

        AssertUnexpected(SessionPair.Receive(pair.Server, serverHandshake));
    }

    [Fact]
    public void AClientHandshakeSentToAClientResetsWithUnexpectedPacket()
    {
        using SessionPair other = SessionPair.Create();
        byte[] clientHandshake = SessionPair.NextPacket(other.Client);
        using SessionPair pair = SessionPair.Create();
        SessionPair.NextPacket(pair.Client);

        AssertUnexpected(SessionPair.Receive(pair.Client, clientHandshake));
    }

    [Fact]
    public void AClientHandshakeInPlaceOfClientAuthenticationResetsWithUnexpectedPacket()
    {
        using SessionPair pair = SessionPair.Create();
        byte[] clientHandshake = SessionPair.NextPacket(pair.Client);
        SessionPair.Receive(pair.Server, clientHandshake);
        SessionPair.NextPacket(pair.Server);

        AssertUnexpected(SessionPair.Receive(pair.Server, Wire.WithMessageId(clientHandshake, 1)));
    }

    private static void AssertUnexpected(OssuaryReceiveResult result) =>
        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.UnexpectedPacket), (result.Status, result.Reason));
}
