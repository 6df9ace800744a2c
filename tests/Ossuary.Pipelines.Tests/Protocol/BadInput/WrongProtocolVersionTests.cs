using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

/// <summary>The version byte sits at body offset 2 of every handshake packet (packet offset 10).</summary>
public class WrongProtocolVersionTests
{
    private const int VersionOffset = 10;

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(0xFF)]
    public void AClientHandshakeWithAnotherVersionResetsTheServer(int version)
    {
        using SessionPair pair = SessionPair.Create();
        byte[] packet = Wire.WithByte(SessionPair.NextPacket(pair.Client), VersionOffset, (byte)version);

        AssertReset(SessionPair.Receive(pair.Server, packet));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(0xFF)]
    public void AServerHandshakeWithAnotherVersionResetsTheClient(int version)
    {
        using SessionPair pair = SessionPair.Create();
        SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));
        byte[] packet = Wire.WithByte(SessionPair.NextPacket(pair.Server), VersionOffset, (byte)version);

        AssertReset(SessionPair.Receive(pair.Client, packet));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(0xFF)]
    public void AClientAuthenticationWithAnotherVersionResetsTheServer(int version)
    {
        using SessionPair pair = SessionPair.Create();
        SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));
        SessionPair.Receive(pair.Client, SessionPair.NextPacket(pair.Server));
        byte[] packet = Wire.WithByte(SessionPair.NextPacket(pair.Client), VersionOffset, (byte)version);

        AssertReset(SessionPair.Receive(pair.Server, packet));
    }

    private static void AssertReset(OssuaryReceiveResult result) =>
        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.WrongProtocolVersion), (result.Status, result.Reason));
}
