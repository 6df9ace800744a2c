using System.Buffers;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

/// <summary>
/// WriteData's XML docs: a packet whose output's Advance threw counts as sent, so its nonce is never
/// used again, and the peer resets on the next packet for the message id it skipped.
/// </summary>
public class AdvanceThrowingDataWriterTests
{
    [Fact]
    public void APacketWhoseAdvanceThrewCountsAsSentAndThePeerResetsOnTheNext()
    {
        using SessionPair pair = SessionPair.Established();
        var refusing = new AdvanceRefusingWriter();

        Assert.Throws<InvalidOperationException>(() => pair.Client.WriteData("same"u8, refusing));
        byte[] lost = refusing.Sealed;
        byte[] next = SessionPair.DataPacket(pair.Client, "same"u8);

        // The same plaintext under the next nonce: another ciphertext, and the next message id.
        Assert.Equal(Wire.MessageId(lost) + 1, Wire.MessageId(next));
        Assert.False(lost.AsSpan(Wire.HeaderSize + 4).SequenceEqual(next.AsSpan(Wire.HeaderSize + 4)), "the nonce was used twice");
        OssuaryReceiveResult result = SessionPair.Receive(pair.Server, next);
        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.MessageIdMismatch), (result.Status, result.Reason));
    }

    /// <summary>Hands out memory, then refuses to commit it; keeps what was written there.</summary>
    private sealed class AdvanceRefusingWriter : IBufferWriter<byte>
    {
        private readonly byte[] _buffer = new byte[OssuarySession.MaxPacketLength];

        public byte[] Sealed { get; private set; } = [];

        public void Advance(int count)
        {
            Sealed = _buffer[..count];
            throw new InvalidOperationException("The writer is completed.");
        }

        public Memory<byte> GetMemory(int sizeHint = 0) => _buffer;

        public Span<byte> GetSpan(int sizeHint = 0) => _buffer;
    }
}
