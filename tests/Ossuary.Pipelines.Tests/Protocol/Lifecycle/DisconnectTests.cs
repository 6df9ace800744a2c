using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

public class DisconnectTests
{
    [Theory]
    [InlineData(false, OssuaryErrorReason.ConnectionClosed)]
    [InlineData(true, OssuaryErrorReason.ConnectionFailed)]
    public void TheErrorFlagOfADisconnectDecidesWhatThePeerReports(bool error, OssuaryErrorReason reported)
    {
        using SessionPair pair = SessionPair.Established();

        pair.Client.Disconnect(error);
        byte[] disconnect = SessionPair.NextPacket(pair.Client);
        OssuaryReceiveResult result = SessionPair.Receive(pair.Server, disconnect);

        Assert.Equal((Wire.Disconnect, (ushort)0, error ? (byte)1 : (byte)0), (Wire.Type(disconnect), Wire.MessageId(disconnect), Wire.ErrorFlag(disconnect)));
        Assert.Equal((OssuaryReceiveStatus.Closed, reported), (result.Status, result.Reason));
        Assert.Equal((OssuarySessionState.Closed, reported), (pair.Client.State, pair.Client.LastError));
        Assert.Equal(OssuarySessionState.Closing, pair.Server.State);
    }

    [Theory]
    [InlineData(false, OssuaryErrorReason.ConnectionClosed)]
    [InlineData(true, OssuaryErrorReason.ConnectionFailed)]
    public void ADisconnectDuringTheHandshakeIsAnsweredWithADisconnect(bool error, OssuaryErrorReason reported)
    {
        using SessionPair pair = SessionPair.Create();
        SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));

        pair.Client.Disconnect(error);
        OssuaryReceiveResult result = SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));

        Assert.Equal((OssuaryReceiveStatus.Closed, reported), (result.Status, result.Reason));
        byte[] answer = SessionPair.NextPacket(pair.Server);
        Assert.Equal((Wire.Disconnect, error ? (byte)1 : (byte)0), (Wire.Type(answer), Wire.ErrorFlag(answer)));
    }

    [Fact]
    public void AClosedSessionReadsNothingAndRefusesToSend()
    {
        using SessionPair pair = SessionPair.Established();
        byte[] late = SessionPair.DataPacket(pair.Server, "too late"u8);
        pair.Client.Disconnect(error: false);
        SessionPair.NextPacket(pair.Client);

        OssuaryReceiveResult result = SessionPair.Receive(pair.Client, late, out byte[] plaintext);

        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.ConnectionClosed), (result.Status, result.Reason));
        Assert.Empty(plaintext);
        Assert.Throws<InvalidOperationException>(() => SessionPair.DataPacket(pair.Client, "no"u8));
    }
}
