using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

/// <summary>
/// A Disconnect's body is 4 bytes (len · error flag · reserved). One cut short is malformed, and a
/// malformed packet must never be reported as a clean close: a 3-byte body holds a zero where the
/// flag goes, and was reported as ConnectionClosed. (The original cannot parse it: it never reports
/// a clean close for it either.)
/// </summary>
public class ShortDisconnectTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ADisconnectTooShortForItsBodyIsAFailureOnceEstablished(int bodyLength)
    {
        using SessionPair pair = SessionPair.Established();

        OssuaryReceiveResult result = SessionPair.Receive(pair.Server, ShortDisconnect(bodyLength));

        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.ConnectionFailed), (result.Status, result.Reason));
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, pair.Server.LastError);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    public void ADisconnectTooShortForItsBodyIsAFailureDuringTheHandshake(int bodyLength)
    {
        using SessionPair pair = SessionPair.Create();
        SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));

        OssuaryReceiveResult result = SessionPair.Receive(pair.Server, ShortDisconnect(bodyLength));

        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.ConnectionFailed), (result.Status, result.Reason));
        byte[] answer = SessionPair.NextPacket(pair.Server);
        Assert.Equal((Wire.Disconnect, (byte)1), (Wire.Type(answer), Wire.ErrorFlag(answer)));
    }

    /// <summary>The first <paramref name="bodyLength"/> bytes of a clean Disconnect's body (len 4 · flag 0 · reserved 0), its header saying so.</summary>
    private static byte[] ShortDisconnect(int bodyLength) =>
        [.. Wire.Header((ushort)bodyLength, 0, Wire.Disconnect), .. new byte[] { 4, 0, 0, 0 }.AsSpan(0, bodyLength)];
}
