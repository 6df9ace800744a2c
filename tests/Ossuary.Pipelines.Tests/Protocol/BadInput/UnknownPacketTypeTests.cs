using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

public class UnknownPacketTypeTests
{
    [Theory]
    [InlineData(0x0000)]
    [InlineData(0x0004)]
    [InlineData(0x0012)]
    [InlineData(0x0021)]
    [InlineData(0x2000)]
    [InlineData(0xFFFF)]
    public void AnUnknownTypeOnAnEstablishedSessionResetsWithUnexpectedPacket(int type)
    {
        using SessionPair pair = SessionPair.Established();
        byte[] packet = Wire.WithType(SessionPair.DataPacket(pair.Client, "hello"u8), (ushort)type);

        OssuaryReceiveResult result = SessionPair.Receive(pair.Server, packet);

        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.UnexpectedPacket), (result.Status, result.Reason));
        Assert.Equal(Wire.Reset, Wire.Type(SessionPair.NextPacket(pair.Server)));
    }

    [Theory]
    [InlineData(0x0000)]
    [InlineData(0x0099)]
    public void AnUnknownTypeInPlaceOfTheClientHandshakeResetsWithUnexpectedPacket(int type)
    {
        using SessionPair pair = SessionPair.Create();
        byte[] packet = Wire.WithType(SessionPair.NextPacket(pair.Client), (ushort)type);

        OssuaryReceiveResult result = SessionPair.Receive(pair.Server, packet);

        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.UnexpectedPacket), (result.Status, result.Reason));
    }
}
