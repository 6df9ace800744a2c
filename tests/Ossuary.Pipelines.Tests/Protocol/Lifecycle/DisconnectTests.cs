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

    /// <summary>
    /// A failure learnt after a clean Disconnect was asked for, before it was written, must reach
    /// the peer: the second call used to be ignored, and the peer heard a clean close.
    /// </summary>
    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void AFailureReportedBeforeTheDisconnectIsWrittenIsWhatThePeerHears(bool first, bool second)
    {
        using SessionPair pair = SessionPair.Established();

        pair.Client.Disconnect(first);
        pair.Client.Disconnect(second);
        byte[] disconnect = SessionPair.NextPacket(pair.Client);
        OssuaryReceiveResult result = SessionPair.Receive(pair.Server, disconnect);

        Assert.Equal((Wire.Disconnect, (byte)1), (Wire.Type(disconnect), Wire.ErrorFlag(disconnect)));
        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.ConnectionFailed), (result.Status, result.Reason));
        Assert.Equal((OssuarySessionState.Closed, OssuaryErrorReason.ConnectionFailed), (pair.Client.State, pair.Client.LastError));
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
    public void ACleanDisconnectThatIsTheFifthResetIsAnsweredWithAnErrorDisconnect()
    {
        // The original counts a Disconnect received during the handshake as a reset (its receive
        // path resets with the Disconnect's reason); when that is the fifth, the permanent error
        // becomes "connection failed" and its answer carries the error flag. Found by the
        // differential tests (Interop/Original/Differential, e.g. scenario 5808742355453979720).
        using var server = new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.UnauthenticatedServer });
        for (int reset = 1; reset <= 4; reset++)
        {
            // A ClientHandshake with a gap in its msg_id: the server resets; the peer's Reset ends the wait.
            using var client = new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.Client });
            OssuaryReceiveResult gap = SessionPair.Receive(server, Wire.WithMessageId(SessionPair.NextPacket(client), 7));
            Assert.Equal(OssuaryReceiveStatus.Reset, gap.Status);
            Assert.Equal(Wire.Reset, Wire.Type(SessionPair.NextPacket(server)));
            SessionPair.Receive(server, Wire.Control(Wire.Reset, error: true));
            Assert.Equal((reset, OssuarySessionState.Handshaking), (server.ResetCount, server.State));
        }

        OssuaryReceiveResult result = SessionPair.Receive(server, Wire.Control(Wire.Disconnect, error: false));

        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.ConnectionClosed), (result.Status, result.Reason));
        byte[] answer = SessionPair.NextPacket(server);
        Assert.Equal((Wire.Disconnect, (byte)1), (Wire.Type(answer), Wire.ErrorFlag(answer)));
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
