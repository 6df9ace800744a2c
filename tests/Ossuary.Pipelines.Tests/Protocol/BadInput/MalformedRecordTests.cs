using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

/// <summary>EncryptedData whose data_len/tag_len (little-endian) disagree with the packet's len.</summary>
public class MalformedRecordTests
{
    private const int DataLenOffset = 8;
    private const int TagLenOffset = 10;
    private static readonly byte[] Message = "twelve bytes"u8.ToArray();

    [Theory]
    [InlineData(DataLenOffset, 11)]
    [InlineData(DataLenOffset, 13)]
    [InlineData(DataLenOffset, 0)]
    [InlineData(DataLenOffset, 0xFFFF)]
    [InlineData(TagLenOffset, 0)]
    [InlineData(TagLenOffset, 15)]
    [InlineData(TagLenOffset, 17)]
    [InlineData(TagLenOffset, 0xFFFF)]
    public void ABlobLengthThatDisagreesWithThePacketResetsWithUnexpectedPacketSize(int offset, int value)
    {
        using SessionPair pair = SessionPair.Established();
        byte[] packet = Wire.WithUInt16LittleEndian(SessionPair.DataPacket(pair.Client, Message), offset, (ushort)value);

        AssertResetForSize(pair.Server, packet);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    [InlineData(19)]
    public void ABodyTooShortForABlobResetsWithUnexpectedPacketSize(int bodyLength)
    {
        using SessionPair pair = SessionPair.Established();
        byte[] body = new byte[bodyLength];
        if (bodyLength >= 4)
        {
            body[2] = 16; // tag_len 16, data_len 0: only the length is wrong
        }

        AssertResetForSize(pair.Server, [.. Wire.Header((ushort)bodyLength, messageId: 2, Wire.EncryptedData), .. body]);
    }

    [Fact]
    public void APacketLenThatAlsoCutsTheTagResetsWithUnexpectedPacketSize()
    {
        using SessionPair pair = SessionPair.Established();
        byte[] packet = SessionPair.DataPacket(pair.Client, Message);
        byte[] shortened = [.. Wire.Header((ushort)(packet.Length - 9), messageId: 2, Wire.EncryptedData), .. packet.AsSpan(8, packet.Length - 9)];

        AssertResetForSize(pair.Server, shortened);
    }

    private static void AssertResetForSize(OssuarySession receiver, byte[] packet)
    {
        OssuaryReceiveResult result = SessionPair.Receive(receiver, packet, out byte[] plaintext);

        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.UnexpectedPacketSize), (result.Status, result.Reason));
        Assert.Empty(plaintext);
        byte[] reset = SessionPair.NextPacket(receiver);
        Assert.Equal((Wire.Reset, (ushort)0, (byte)1), (Wire.Type(reset), Wire.MessageId(reset), Wire.ErrorFlag(reset)));
    }
}
