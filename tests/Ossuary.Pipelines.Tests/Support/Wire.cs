using System.Buffers.Binary;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Field offsets and small edits of raw packets (PROTOCOL.md, "Packet framing").</summary>
internal static class Wire
{
    public const int HeaderSize = 8;
    public const ushort ClientHandshake = 0x01;
    public const ushort ServerHandshake = 0x02;
    public const ushort ClientAuthentication = 0x03;
    public const ushort Disconnect = 0x10;
    public const ushort Reset = 0x11;
    public const ushort EncryptedData = 0x20;

    public static ushort Length(ReadOnlySpan<byte> packet) => BinaryPrimitives.ReadUInt16BigEndian(packet);

    public static ushort MessageId(ReadOnlySpan<byte> packet) => BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);

    public static ushort Type(ReadOnlySpan<byte> packet) => BinaryPrimitives.ReadUInt16BigEndian(packet[4..]);

    /// <summary>The error flag of a Reset or Disconnect body.</summary>
    public static byte ErrorFlag(ReadOnlySpan<byte> packet) => packet[HeaderSize + 2];

    public static byte[] Header(ushort length, ushort messageId, ushort type)
    {
        byte[] header = new byte[HeaderSize];
        BinaryPrimitives.WriteUInt16BigEndian(header, length);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), messageId);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(4), type);
        return header;
    }

    /// <summary>A Reset or Disconnect packet: header with msg_id 0 · len (LE) · error flag · reserved.</summary>
    public static byte[] Control(ushort type, bool error) => [.. Header(4, 0, type), 4, 0, error ? (byte)1 : (byte)0, 0];

    public static byte[] WithMessageId(byte[] packet, ushort messageId)
    {
        byte[] copy = [.. packet];
        BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(2), messageId);
        return copy;
    }

    public static byte[] WithType(byte[] packet, ushort type)
    {
        byte[] copy = [.. packet];
        BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(4), type);
        return copy;
    }

    /// <summary>Writes a little-endian u16 at <paramref name="offset"/> of a copy (handshake len, data_len, tag_len).</summary>
    public static byte[] WithUInt16LittleEndian(byte[] packet, int offset, ushort value)
    {
        byte[] copy = [.. packet];
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    public static byte[] WithByte(byte[] packet, int offset, byte value)
    {
        byte[] copy = [.. packet];
        copy[offset] = value;
        return copy;
    }
}
