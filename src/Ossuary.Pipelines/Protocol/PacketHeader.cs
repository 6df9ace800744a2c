using System.Buffers;
using System.Buffers.Binary;

namespace Ossuary.Pipelines.Protocol;

/// <summary>
/// The 8-byte big-endian header in front of every packet: <c>len</c> (body only), <c>msg_id</c>,
/// <c>type</c> and two reserved bytes, which the original never checks and neither do we.
/// </summary>
internal readonly record struct PacketHeader(ushort BodyLength, ushort MessageId, PacketType Type)
{
    public const int Size = 8;

    /// <summary>16,384 plaintext bytes + 8 header + 4 blob header + 16 tag: the original's packet buffer.</summary>
    public const int MaxPacketSize = 16412;

    public const int MaxBodyLength = MaxPacketSize - Size;

    public int PacketLength => Size + BodyLength;

    public static PacketHeader Read(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt16BigEndian(source),
        BinaryPrimitives.ReadUInt16BigEndian(source[2..]),
        (PacketType)BinaryPrimitives.ReadUInt16BigEndian(source[4..]));

    /// <summary>Reads the header from the front of a sequence; false if fewer than 8 bytes are there.</summary>
    public static bool TryRead(in ReadOnlySequence<byte> input, out PacketHeader header)
    {
        ReadOnlySpan<byte> first = input.FirstSpan;
        if (first.Length >= Size)
        {
            header = Read(first);
            return true;
        }

        if (input.Length < Size)
        {
            header = default;
            return false;
        }

        Span<byte> copy = stackalloc byte[Size];
        input.Slice(0, Size).CopyTo(copy);
        header = Read(copy);
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, BodyLength);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], MessageId);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Type);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], 0);
    }
}
