using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

public class MessageIdTests
{
    [Fact]
    public void ADataPacketDeliveredTwiceResetsWithMessageIdMismatch()
    {
        using SessionPair pair = SessionPair.Established();
        byte[] packet = SessionPair.DataPacket(pair.Client, "once"u8);
        Assert.Equal(OssuaryReceiveStatus.Data, SessionPair.Receive(pair.Server, packet).Status);

        AssertMismatch(SessionPair.Receive(pair.Server, packet, out byte[] plaintext));
        Assert.Empty(plaintext);
    }

    [Fact]
    public void ADroppedDataPacketResetsWithMessageIdMismatch()
    {
        using SessionPair pair = SessionPair.Established();
        SessionPair.DataPacket(pair.Client, "lost"u8);
        byte[] second = SessionPair.DataPacket(pair.Client, "arrives"u8);

        AssertMismatch(SessionPair.Receive(pair.Server, second, out byte[] plaintext));
        Assert.Empty(plaintext);
    }

    [Fact]
    public void ReorderedDataPacketsResetWithMessageIdMismatch()
    {
        using SessionPair pair = SessionPair.Established();
        byte[] first = SessionPair.DataPacket(pair.Server, "first"u8);
        byte[] second = SessionPair.DataPacket(pair.Server, "second"u8);

        AssertMismatch(SessionPair.Receive(pair.Client, second));
        Assert.NotEqual(OssuaryReceiveStatus.Data, SessionPair.Receive(pair.Client, first).Status);
    }

    [Fact]
    public void ARepeatedClientHandshakeResetsWithMessageIdMismatch()
    {
        using SessionPair pair = SessionPair.Create();
        byte[] clientHandshake = SessionPair.NextPacket(pair.Client);
        SessionPair.Receive(pair.Server, clientHandshake);
        SessionPair.NextPacket(pair.Server);

        AssertMismatch(SessionPair.Receive(pair.Server, clientHandshake));
    }

    private static void AssertMismatch(OssuaryReceiveResult result) =>
        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.MessageIdMismatch), (result.Status, result.Reason));
}
