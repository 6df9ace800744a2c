using System.Buffers;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

public class MessageIdWrapTests
{
    private const int Messages = 70_000;

    [Fact]
    public void SeventyThousandMessagesArriveAsTheSixteenBitMessageIdWraps()
    {
        using SessionPair pair = SessionPair.Established();
        var packet = new ArrayBufferWriter<byte>(64);
        var plaintext = new ArrayBufferWriter<byte>(64);
        int wraps = 0;
        ushort previousId = 1; // the client's ClientAuthentication

        for (int i = 0; i < Messages; i++)
        {
            packet.Clear();
            pair.Client.WriteData(ReadOnlySpan<byte>.Empty, packet);
            ushort id = Wire.MessageId(packet.WrittenSpan);
            Assert.Equal((ushort)(previousId + 1), id);
            wraps += id == 0 ? 1 : 0;
            previousId = id;

            OssuaryReceiveResult result = pair.Server.Receive(new ReadOnlySequence<byte>(packet.WrittenMemory), plaintext, out _, out _);
            if (result.Status != OssuaryReceiveStatus.Data || result.PlaintextLength != 0)
            {
                Assert.Fail($"message {i} (msg_id {id}): {result}");
            }
        }

        Assert.Equal(1, wraps);
        Assert.Equal(0, plaintext.WrittenCount);
        pair.Pump.Send(pair.Client, "still in step"u8);
        Assert.Equal("still in step"u8.ToArray(), Assert.Single(pair.Pump.ServerReceived));
    }
}
