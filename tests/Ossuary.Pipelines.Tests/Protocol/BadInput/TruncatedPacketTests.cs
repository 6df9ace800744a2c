using System.Buffers;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

public class TruncatedPacketTests
{
    [Fact]
    public void EveryPrefixOfAServerHandshakeNeedsMoreDataAndConsumesNothing()
    {
        using SessionPair pair = SessionPair.Create();
        SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));
        byte[] serverHandshake = SessionPair.NextPacket(pair.Server);
        Assert.Equal(208, serverHandshake.Length);

        for (int length = 0; length < serverHandshake.Length; length++)
        {
            var input = new ReadOnlySequence<byte>(serverHandshake, 0, length);
            var plaintext = new ArrayBufferWriter<byte>();

            OssuaryReceiveResult result = pair.Client.Receive(input, plaintext, out SequencePosition consumed, out SequencePosition examined);

            Assert.Equal(OssuaryReceiveStatus.NeedMoreData, result.Status);
            Assert.Equal(0, input.GetOffset(consumed));
            Assert.Equal(length, input.GetOffset(examined));
            Assert.Equal(0, plaintext.WrittenCount);
        }

        Assert.Equal(OssuarySessionState.Handshaking, pair.Client.State);
        Assert.Equal(OssuaryReceiveStatus.Handshake, SessionPair.Receive(pair.Client, serverHandshake).Status);
    }

    [Fact]
    public void EveryPrefixOfADataPacketNeedsMoreDataAndTheWholePacketStillOpens()
    {
        using SessionPair pair = SessionPair.Established();
        byte[] packet = SessionPair.DataPacket(pair.Client, "a message cut short"u8);

        for (int length = 0; length < packet.Length; length++)
        {
            var input = new ReadOnlySequence<byte>(packet, 0, length);
            OssuaryReceiveResult result = pair.Server.Receive(input, new ArrayBufferWriter<byte>(), out SequencePosition consumed, out SequencePosition examined);
            Assert.Equal((OssuaryReceiveStatus.NeedMoreData, 0L, (long)length), (result.Status, input.GetOffset(consumed), input.GetOffset(examined)));
        }

        Assert.Equal(OssuaryReceiveStatus.Data, SessionPair.Receive(pair.Server, packet, out byte[] plaintext).Status);
        Assert.Equal("a message cut short"u8.ToArray(), plaintext);
    }
}
