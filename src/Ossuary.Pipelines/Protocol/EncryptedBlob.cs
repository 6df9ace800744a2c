using System.Buffers.Binary;

namespace Ossuary.Pipelines.Protocol;

/// <summary>
/// The encrypted structure inside handshake and data packets: <c>data_len</c> and <c>tag_len</c>
/// (both <b>little-endian</b>: the original copies a packed struct from memory), the ciphertext,
/// then the 16-byte Poly1305 tag.
/// </summary>
internal static class EncryptedBlob
{
    public const int HeaderSize = 4;
    public const int TagSize = 16;
    public const int Overhead = HeaderSize + TagSize;

    public static void WriteHeader(Span<byte> destination, int dataLength)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(destination, (ushort)dataLength);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[2..], TagSize);
    }

    /// <summary>
    /// Checks the blob header against the space the blob occupies; the original trusts these
    /// fields and crashes on some values, we refuse them.
    /// </summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> header, int blobLength, out int dataLength)
    {
        dataLength = BinaryPrimitives.ReadUInt16LittleEndian(header);
        int tagLength = BinaryPrimitives.ReadUInt16LittleEndian(header[2..]);
        return tagLength == TagSize && Overhead + dataLength == blobLength;
    }
}
