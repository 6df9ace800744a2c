using System.Buffers;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.BadInput;

public class OversizedPacketTests
{
    [Fact]
    public void AHeaderAnnouncingMoreThanTheLimitClosesTheSessionBeforeAnyBody()
    {
        using SessionPair pair = SessionPair.Established();
        var header = new ReadOnlySequence<byte>(Wire.Header(length: 16405, messageId: 2, Wire.EncryptedData));

        OssuaryReceiveResult result = pair.Server.Receive(header, new ArrayBufferWriter<byte>(), out _, out _);

        Assert.Equal(OssuaryReceiveStatus.Closed, result.Status);
        Assert.Equal(OssuaryErrorReason.OversizedPacket, result.Reason);
        byte[] farewell = SessionPair.NextPacket(pair.Server);
        Assert.Equal((Wire.Disconnect, (ushort)0, (byte)1), (Wire.Type(farewell), Wire.MessageId(farewell), Wire.ErrorFlag(farewell)));
        Assert.Equal(OssuarySessionState.Closed, pair.Server.State);
        Assert.Empty(SessionPair.NextPacket(pair.Server));
    }

    [Fact]
    public void AHeaderAnnouncingExactlyTheLimitWaitsForItsBody()
    {
        using SessionPair pair = SessionPair.Established();
        var header = new ReadOnlySequence<byte>(Wire.Header(length: 16404, messageId: 2, Wire.EncryptedData));

        OssuaryReceiveResult result = pair.Server.Receive(header, new ArrayBufferWriter<byte>(), out SequencePosition consumed, out _);

        Assert.Equal(OssuaryReceiveStatus.NeedMoreData, result.Status);
        Assert.Equal(0, header.GetOffset(consumed));
        Assert.True(pair.Server.IsEstablished);
    }

    [Fact]
    public void AnOversizedHeaderDuringTheHandshakeAlsoClosesTheSession()
    {
        using SessionPair pair = SessionPair.Create();

        OssuaryReceiveResult result = SessionPair.Receive(pair.Server, Wire.Header(length: 0xFFFF, messageId: 0, Wire.ClientHandshake));

        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.OversizedPacket), (result.Status, result.Reason));
        Assert.Equal(Wire.Disconnect, Wire.Type(SessionPair.NextPacket(pair.Server)));
    }
}
