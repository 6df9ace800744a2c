using System.Buffers;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

/// <summary>
/// Receive's plaintext writer is the caller's: when it throws (a bounded buffer that is full, a
/// pipe writer completed by another thread), the packet is not consumed and the session is as it
/// was, so the same bytes can be handed in again.
/// </summary>
public class ThrowingPlaintextWriterTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ADataPacketRefusedByTheWriterCanBeReceivedAgain(bool throwOnAdvance)
    {
        using SessionPair pair = SessionPair.Established();
        byte[] first = SessionPair.DataPacket(pair.Server, "first"u8);
        byte[] second = SessionPair.DataPacket(pair.Server, "second"u8);

        Assert.Throws<InvalidOperationException>(() =>
            pair.Client.Receive(new ReadOnlySequence<byte>(first), new RefusingWriter(throwOnAdvance), out _, out _));

        OssuaryReceiveResult again = SessionPair.Receive(pair.Client, first, out byte[] plaintext);
        OssuaryReceiveResult next = SessionPair.Receive(pair.Client, second, out byte[] nextPlaintext);
        Assert.Equal((OssuaryReceiveStatus.Data, "first"), (again.Status, System.Text.Encoding.ASCII.GetString(plaintext)));
        Assert.Equal((OssuaryReceiveStatus.Data, "second"), (next.Status, System.Text.Encoding.ASCII.GetString(nextPlaintext)));
        Assert.Equal((OssuarySessionState.Established, 0, OssuaryErrorReason.None), (pair.Client.State, pair.Client.ResetCount, pair.Client.LastError));
    }

    /// <summary>A writer that gives memory but throws when asked for it, or when told it was filled.</summary>
    private sealed class RefusingWriter(bool throwOnAdvance) : IBufferWriter<byte>
    {
        private readonly byte[] _memory = new byte[OssuarySession.MaxPlaintextLength];

        public void Advance(int count) => throw new InvalidOperationException("The writer is full.");

        public Memory<byte> GetMemory(int sizeHint = 0) => throwOnAdvance ? _memory : throw new InvalidOperationException("The writer is full.");

        public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;
    }
}
