using System.Buffers;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

/// <summary>
/// WriteHandshake's output writer is the caller's: when it throws before a Reset or Disconnect
/// is written, that packet is still owed, and the next call writes it.
/// </summary>
public class ThrowingOutputWriterTests
{
    [Theory]
    [InlineData("a Disconnect")]
    [InlineData("a Reset")]
    [InlineData("the answer to a Reset")]
    public void AControlPacketTheWriterRefusedIsWrittenByTheNextCall(string owed)
    {
        using SessionPair pair = SessionPair.Established();
        switch (owed)
        {
            case "a Disconnect":
                pair.Client.Disconnect(error: false);
                break;
            case "a Reset":
                // A data packet with a gap in its msg_id: the client resets and owes the server its Reset.
                SessionPair.Receive(pair.Client, Wire.WithMessageId(SessionPair.DataPacket(pair.Server, "gap"u8), 7));
                break;
            default:
                SessionPair.Receive(pair.Client, Wire.Control(Wire.Reset, error: true));
                break;
        }

        OssuarySessionState before = pair.Client.State;
        Assert.True(pair.Client.HasPendingOutput);

        Assert.Throws<InvalidOperationException>(() => pair.Client.WriteHandshake(new RefusingWriter()));

        Assert.Equal(before, pair.Client.State);
        Assert.True(pair.Client.HasPendingOutput, $"nothing is owed any more, though {owed} was never written");
        byte[] packet = SessionPair.NextPacket(pair.Client);
        Assert.Equal(owed == "a Disconnect" ? Wire.Disconnect : Wire.Reset, packet.Length > 0 ? Wire.Type(packet) : (ushort)0);
    }

    [Theory]
    [InlineData("ClientHandshake")]
    [InlineData("ServerHandshake")]
    [InlineData("ClientAuthentication")]
    public void AHandshakePacketWhoseAdvanceThrewIsWrittenAgainByTheNextCallAsItWas(string owed)
    {
        using SessionPair pair = SessionPair.Create();
        OssuarySession writer = owed == "ServerHandshake" ? pair.Server : pair.Client;
        if (owed != "ClientHandshake")
        {
            SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));
        }

        if (owed == "ClientAuthentication")
        {
            SessionPair.Receive(pair.Client, SessionPair.NextPacket(pair.Server));
        }

        var refusing = new AdvanceRefusingWriter();
        Assert.Throws<InvalidOperationException>(() => writer.WriteHandshake(refusing));
        Assert.True(writer.HasPendingOutput, $"the {owed} is no longer owed");

        // The same packet again: its message id and (for the two sealed ones) its nonce were not spent
        // on the packet the writer refused, or the peer resets (a message id gap, a blob it cannot open).
        byte[] again = SessionPair.NextPacket(writer);
        Assert.Equal(Convert.ToHexString(refusing.Refused), Convert.ToHexString(again));
        OssuaryReceiveResult result = SessionPair.Receive(pair.Pump.Peer(writer), again);
        Assert.Equal((OssuaryReceiveStatus.Handshake, OssuaryErrorReason.None), (result.Status, result.Reason));
        pair.Pump.Run();
        Assert.True(pair.Client.IsEstablished && pair.Server.IsEstablished, $"client {pair.Client.State}, server {pair.Server.State}");
        Assert.Equal((0, 0), (pair.Client.ResetCount, pair.Server.ResetCount));
    }

    /// <summary>Hands out memory, then refuses to commit it; keeps what was written there.</summary>
    private sealed class AdvanceRefusingWriter : IBufferWriter<byte>
    {
        private readonly byte[] _buffer = new byte[OssuarySession.MaxPacketLength];

        public byte[] Refused { get; private set; } = [];

        public void Advance(int count)
        {
            Refused = _buffer[..count];
            throw new InvalidOperationException("The writer is completed.");
        }

        public Memory<byte> GetMemory(int sizeHint = 0) => _buffer;

        public Span<byte> GetSpan(int sizeHint = 0) => _buffer;
    }

    private sealed class RefusingWriter : IBufferWriter<byte>
    {
        public void Advance(int count) => throw new InvalidOperationException("The writer is completed.");

        public Memory<byte> GetMemory(int sizeHint = 0) => throw new InvalidOperationException("The writer is completed.");

        public Span<byte> GetSpan(int sizeHint = 0) => throw new InvalidOperationException("The writer is completed.");
    }
}
