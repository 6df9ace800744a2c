using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

/// <summary>PROTOCOL.md, "Reset and Disconnect": a reset mid-session throws the keys away and the pair handshakes again.</summary>
public class PeerResetTests
{
    [Fact]
    public void AResetFromThePeerIsAnsweredAndThePairHandshakesAgainWithFreshKeys()
    {
        using SessionPair pair = SessionPair.Established();
        byte[] firstClientKey = EphemeralKey(pair.Pump.Wire, Wire.ClientHandshake);
        byte[] firstServerKey = EphemeralKey(pair.Pump.Wire, Wire.ServerHandshake);

        // The server resets on a damaged record and tells the client.
        byte[] damaged = SessionPair.DataPacket(pair.Client, "damaged"u8);
        damaged[^1] ^= 0xFF;
        Assert.Equal(OssuaryReceiveStatus.Reset, SessionPair.Receive(pair.Server, damaged).Status);
        byte[] serverReset = SessionPair.NextPacket(pair.Server);

        OssuaryReceiveResult result = SessionPair.Receive(pair.Client, serverReset);

        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.ConnectionReset), (result.Status, result.Reason));
        Assert.Equal(OssuarySessionState.Resetting, pair.Client.State);
        Assert.Null(pair.Client.RemotePublicKey);
        byte[] answer = SessionPair.NextPacket(pair.Client);
        Assert.Equal((Wire.Reset, (ushort)0), (Wire.Type(answer), Wire.MessageId(answer)));
        SessionPair.Receive(pair.Server, answer);

        pair.Pump.Wire.Clear();
        Assert.Equal(3, pair.Pump.Run());
        Assert.True(pair.Client.IsEstablished && pair.Server.IsEstablished);
        Assert.NotEqual(firstClientKey, EphemeralKey(pair.Pump.Wire, Wire.ClientHandshake));
        Assert.NotEqual(firstServerKey, EphemeralKey(pair.Pump.Wire, Wire.ServerHandshake));
        Assert.Equal((1, 1), (pair.Client.ResetCount, pair.Server.ResetCount));

        pair.Pump.Send(pair.Client, "again"u8);
        pair.Pump.Send(pair.Server, "welcome back"u8);
        Assert.Equal("again"u8.ToArray(), Assert.Single(pair.Pump.ServerReceived));
        Assert.Equal("welcome back"u8.ToArray(), Assert.Single(pair.Pump.ClientReceived));
    }

    [Fact]
    public void ASessionDisposedWithAResetStillToAnswerWritesNothingMore()
    {
        using SessionPair pair = SessionPair.Established();
        byte[] damaged = SessionPair.DataPacket(pair.Client, "damaged"u8);
        damaged[^1] ^= 0xFF;
        SessionPair.Receive(pair.Server, damaged);
        Assert.Equal(OssuaryReceiveStatus.Reset, SessionPair.Receive(pair.Client, SessionPair.NextPacket(pair.Server)).Status);
        Assert.True(pair.Client.HasPendingOutput); // the answer to the server's Reset

        pair.Client.Dispose();

        // Every call after Dispose finds the session closed: none puts a packet on the wire.
        Assert.Equal(OssuarySessionState.Closed, pair.Client.State);
        Assert.False(pair.Client.HasPendingOutput);
        Assert.Equal(0, pair.Client.WriteHandshake(new System.Buffers.ArrayBufferWriter<byte>()));
    }

    [Fact]
    public void DataSentBeforeTheResetDoesNotOpenAfterIt()
    {
        using SessionPair pair = SessionPair.Established();
        byte[] stale = SessionPair.DataPacket(pair.Server, "from the old keys"u8);
        byte[] damaged = SessionPair.DataPacket(pair.Client, "damaged"u8);
        damaged[^1] ^= 0xFF;
        SessionPair.Receive(pair.Server, damaged);
        pair.Pump.Run();
        Assert.True(pair.Client.IsEstablished && pair.Server.IsEstablished);

        OssuaryReceiveResult result = SessionPair.Receive(pair.Client, stale, out byte[] plaintext);

        Assert.NotEqual(OssuaryReceiveStatus.Data, result.Status);
        Assert.Empty(plaintext);
    }

    [Fact]
    public void AResetNeitherSideStartedIsAnsweredByBothAsTheOriginalDoesAndThePairStillSettles()
    {
        using SessionPair pair = SessionPair.Established();

        // An on-path attacker injects a Reset (they travel in the clear) towards the client. Neither
        // side is waiting for an answer, so each takes the other's answer for a Reset it did not ask
        // for (PROTOCOL.md) and answers it, as the original's sides do (DifferentialTests, seed
        // 7455107161863376737). The server's answer reaches the client ahead of its ServerHandshake,
        // which the client, starting over, then finds unexpected and resets for: a reset the client
        // starts, which the server's answer ends.
        OssuaryReceiveResult injected = SessionPair.Receive(pair.Client, Wire.Control(Wire.Reset, error: true));
        Assert.Equal(OssuaryReceiveStatus.Reset, injected.Status);
        pair.Pump.Run(maxPackets: 100);

        Assert.True(pair.Client.IsEstablished && pair.Server.IsEstablished, $"client {pair.Client.State}, server {pair.Server.State}");
        Assert.Equal((3, 2), (pair.Client.ResetCount, pair.Server.ResetCount));
        pair.Pump.Send(pair.Client, "still here"u8);
        Assert.Equal("still here"u8.ToArray(), Assert.Single(pair.Pump.ServerReceived));
    }

    /// <summary>The ephemeral key (body offset 8) of the first ClientHandshake or ServerHandshake on the wire.</summary>
    private static byte[] EphemeralKey(List<(OssuarySession From, byte[] Packet)> wire, ushort type) =>
        wire.First(p => Wire.Type(p.Packet) == type).Packet.AsSpan(Wire.HeaderSize + 8, 32).ToArray();
}
