using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

/// <summary>
/// PROTOCOL.md, "Reset and Disconnect": a side that receives a Reset it did not ask for resets,
/// answers and starts over, also when it has just answered one. The peer that sent it waits for
/// that answer (the original for ever, we for <see cref="OssuarySessionOptions.ResetTimeout"/>).
/// </summary>
public class SecondPeerResetTests
{
    [Fact]
    public void AResetTheServerStartsRightAfterTheClientAnsweredItsFirstIsAnsweredToo()
    {
        using SessionPair pair = SessionPair.Established();

        // The server resets on a damaged record; the client answers and sends its new ClientHandshake.
        byte[] damaged = SessionPair.DataPacket(pair.Client, "damaged"u8);
        damaged[^1] ^= 0xFF;
        Assert.Equal(OssuaryReceiveStatus.Reset, SessionPair.Receive(pair.Server, damaged).Status);
        Assert.Equal(OssuaryReceiveStatus.Reset, SessionPair.Receive(pair.Client, SessionPair.NextPacket(pair.Server)).Status);
        byte[] answer = SessionPair.NextPacket(pair.Client);
        byte[] clientHandshake = SessionPair.NextPacket(pair.Client);
        Assert.Equal((Wire.Reset, Wire.ClientHandshake), (Wire.Type(answer), Wire.Type(clientHandshake)));
        Assert.Equal(OssuaryReceiveStatus.Handshake, SessionPair.Receive(pair.Server, answer).Status);

        // That ClientHandshake arrives damaged (its version byte): the server starts a second reset,
        // before it has sent the client anything else.
        Assert.Equal(OssuaryReceiveStatus.Reset, SessionPair.Receive(pair.Server, Wire.WithByte(clientHandshake, Wire.HeaderSize + 2, 7)).Status);
        byte[] secondReset = SessionPair.NextPacket(pair.Server);
        Assert.Equal(Wire.Reset, Wire.Type(secondReset));
        Assert.Equal(OssuarySessionState.Resetting, pair.Server.State);

        OssuaryReceiveResult result = SessionPair.Receive(pair.Client, secondReset);

        // Taken for the server's answer to the client's answer, it was dropped: the client waited for a
        // ServerHandshake and the server for an answer, until one of them timed out.
        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.ConnectionReset), (result.Status, result.Reason));
        pair.Pump.Run();
        Assert.True(pair.Client.IsEstablished && pair.Server.IsEstablished, $"client {pair.Client.State}, server {pair.Server.State}");
        Assert.Equal((2, 2), (pair.Client.ResetCount, pair.Server.ResetCount));
        pair.Pump.Send(pair.Client, "after two resets"u8);
        Assert.Equal("after two resets"u8.ToArray(), Assert.Single(pair.Pump.ServerReceived));
    }
}
