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

    private sealed class RefusingWriter : IBufferWriter<byte>
    {
        public void Advance(int count) => throw new InvalidOperationException("The writer is completed.");

        public Memory<byte> GetMemory(int sizeHint = 0) => throw new InvalidOperationException("The writer is completed.");

        public Span<byte> GetSpan(int sizeHint = 0) => throw new InvalidOperationException("The writer is completed.");
    }
}
