using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

/// <summary>
/// Each handshake body starts with its own length (u16 little-endian, packet offset 8), which must
/// equal the fixed size of its type: 84, 200 or 124. The outer len is left intact here.
/// </summary>
public class HandshakeLengthFieldTests
{
    private const int InnerLenOffset = 8;

    [Theory]
    [InlineData(0)]
    [InlineData(83)]
    [InlineData(85)]
    [InlineData(84 << 8)]
    public void AClientHandshakeWithAWrongInnerLenResetsTheServer(int innerLen)
    {
        using SessionPair pair = SessionPair.Create();
        byte[] packet = Wire.WithUInt16LittleEndian(SessionPair.NextPacket(pair.Client), InnerLenOffset, (ushort)innerLen);

        AssertReset(SessionPair.Receive(pair.Server, packet));
    }

    [Theory]
    [InlineData(199)]
    [InlineData(201)]
    [InlineData(124)]
    public void AServerHandshakeWithAWrongInnerLenResetsTheClient(int innerLen)
    {
        using SessionPair pair = SessionPair.Create();
        SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));
        byte[] packet = Wire.WithUInt16LittleEndian(SessionPair.NextPacket(pair.Server), InnerLenOffset, (ushort)innerLen);

        AssertReset(SessionPair.Receive(pair.Client, packet));
    }

    [Theory]
    [InlineData(123)]
    [InlineData(125)]
    [InlineData(84)]
    public void AClientAuthenticationWithAWrongInnerLenResetsTheServer(int innerLen)
    {
        using SessionPair pair = SessionPair.Create();
        SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));
        SessionPair.Receive(pair.Client, SessionPair.NextPacket(pair.Server));
        byte[] packet = Wire.WithUInt16LittleEndian(SessionPair.NextPacket(pair.Client), InnerLenOffset, (ushort)innerLen);

        AssertReset(SessionPair.Receive(pair.Server, packet));
    }

    [Fact]
    public void AClientHandshakeWhoseOuterAndInnerLenAgreeOnTheWrongSizeResetsTheServer()
    {
        using SessionPair pair = SessionPair.Create();
        byte[] original = SessionPair.NextPacket(pair.Client);
        byte[] longer = [.. Wire.Header(85, 0, Wire.ClientHandshake), .. original.AsSpan(8), 0];
        longer = Wire.WithUInt16LittleEndian(longer, InnerLenOffset, 85);

        AssertReset(SessionPair.Receive(pair.Server, longer));
    }

    private static void AssertReset(OssuaryReceiveResult result) =>
        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.UnexpectedPacketSize), (result.Status, result.Reason));
}
