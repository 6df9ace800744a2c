using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

/// <summary>
/// X25519 public keys of small order (and their non-canonical encodings), for which any clamped
/// secret gives an all-zero shared secret: u = 0, u = 1, the two order-8 points, u = p - 1,
/// u = p and u = p + 1 (p = 2^255 - 19).
/// </summary>
public class LowOrderEphemeralKeyTests
{
    public static TheoryData<string> LowOrderPoints() =>
    [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];

    [Theory]
    [MemberData(nameof(LowOrderPoints))]
    public void ALowOrderClientEphemeralKeyResetsTheServerWithInvalidKey(string point)
    {
        using SessionPair pair = SessionPair.Create();
        byte[] clientHandshake = new ForgedPeer(Convert.FromHexString(point)).ClientHandshake();

        OssuaryReceiveResult result = SessionPair.Receive(pair.Server, clientHandshake);

        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.InvalidKey), (result.Status, result.Reason));
        Assert.Equal(Wire.Reset, Wire.Type(SessionPair.NextPacket(pair.Server)));
    }

    [Theory]
    [MemberData(nameof(LowOrderPoints))]
    public void ALowOrderServerEphemeralKeyResetsTheClientWithInvalidKey(string point)
    {
        using SessionPair pair = SessionPair.Create();
        byte[] serverHandshake = new ForgedPeer(Convert.FromHexString(point)).ServerHandshake(SessionPair.NextPacket(pair.Client), pair.ServerIdentity);

        OssuaryReceiveResult result = SessionPair.Receive(pair.Client, serverHandshake);

        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.InvalidKey), (result.Status, result.Reason));
        Assert.Null(pair.Client.RemotePublicKey);
    }

    [Fact]
    public void AnOrdinaryForgedEphemeralKeyIsAccepted()
    {
        using SessionPair pair = SessionPair.Create();

        OssuaryReceiveResult result = SessionPair.Receive(pair.Server, new ForgedPeer().ClientHandshake());

        Assert.Equal(OssuaryReceiveStatus.Handshake, result.Status);
        Assert.Equal(Wire.ServerHandshake, Wire.Type(SessionPair.NextPacket(pair.Server)));
    }
}
