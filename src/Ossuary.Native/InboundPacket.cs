using System.Buffers;
using System.Buffers.Binary;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Native;

/// <summary>
/// Gathers one packet from the caller's input, however it is split across calls. libossuary
/// consumes the bytes of a partial packet into an internal buffer (its "would block" case);
/// this does the same, but never takes a byte beyond the packet in hand, so whatever follows
/// stays in the caller's buffer for the next call (recv_handshake, then recv_data).
/// </summary>
/// <remarks>
/// The header is gathered into 8 bytes of its own; the packet's buffer, sized from the header, is
/// rented from <see cref="ArrayPool{T}.Shared"/> and returned when the session has consumed the
/// packet, so an idle connection holds no packet buffer.
/// </remarks>
internal sealed class InboundPacket : IDisposable
{
    private const int HeaderSize = 8;
    private const ushort EncryptedDataType = 0x20;

    /// <summary>An EncryptedData body is the plaintext plus 4 bytes of blob header and a 16-byte tag.</summary>
    private const int RecordOverhead = 20;

    private readonly byte[] _header = new byte[HeaderSize];

    /// <summary>The whole packet, header included, once the header has come; otherwise null.</summary>
    private byte[]? _packet;
    private int _length;

    public bool HasHeader => _length >= HeaderSize;

    /// <summary>The header announces more than a packet may hold; the session refuses it from the header alone.</summary>
    public bool IsOversized => HasHeader && PacketLength > OssuarySession.MaxPacketLength;

    public bool IsComplete => HasHeader && !IsOversized && _length == PacketLength;

    /// <summary>What a complete packet needs handing to the session: the whole packet, or the bare header of an oversized one.</summary>
    public bool IsReady => IsComplete || IsOversized;

    /// <summary>For an EncryptedData packet, the plaintext it will decrypt to; otherwise 0.</summary>
    public int PlaintextLength
    {
        get
        {
            if (!HasHeader || BinaryPrimitives.ReadUInt16BigEndian(_header.AsSpan(4)) != EncryptedDataType)
            {
                return 0;
            }

            return Math.Max(0, BodyLength - RecordOverhead);
        }
    }

    public ReadOnlySequence<byte> Bytes => _packet is null ? new(_header, 0, _length) : new(_packet, 0, _length);

    private int BodyLength => BinaryPrimitives.ReadUInt16BigEndian(_header);

    private int PacketLength => HeaderSize + BodyLength;

    /// <summary>Takes header bytes from <paramref name="input"/>, at most up to the end of the header.</summary>
    public int TakeHeader(ReadOnlySpan<byte> input)
    {
        if (HasHeader)
        {
            return 0;
        }

        int count = Math.Min(HeaderSize - _length, input.Length);
        input[..count].CopyTo(_header.AsSpan(_length));
        _length += count;
        if (HasHeader && !IsOversized)
        {
            _packet = ArrayPool<byte>.Shared.Rent(PacketLength);
            _header.CopyTo(_packet.AsSpan());
        }

        return count;
    }

    /// <summary>Takes body bytes from <paramref name="input"/>, at most up to the end of the packet.</summary>
    public int TakeBody(ReadOnlySpan<byte> input)
    {
        if (!HasHeader || IsOversized)
        {
            return 0;
        }

        int count = Math.Min(PacketLength - _length, input.Length);
        input[..count].CopyTo(_packet!.AsSpan(_length));
        _length += count;
        return count;
    }

    /// <summary>How many bytes of the packet have been taken so far, header included.</summary>
    public int Length => _length;

    /// <summary>
    /// Gives back every byte taken after the first <paramref name="length"/> (a <see cref="Length"/> read
    /// earlier), as if they had never been taken: for a call that fails after taking them, so that the
    /// caller, told that it consumed nothing, hands the same bytes in again.
    /// </summary>
    public void TruncateTo(int length)
    {
        if (length >= _length)
        {
            return;
        }

        if (length < HeaderSize && _packet is not null)
        {
            // The header is incomplete again: its buffer is rented afresh once the header is.
            ArrayPool<byte>.Shared.Return(_packet);
            _packet = null;
        }

        _length = length;
    }

    /// <summary>Forgets the packet once the session has consumed it.</summary>
    public void Clear()
    {
        _length = 0;
        if (_packet is not null)
        {
            ArrayPool<byte>.Shared.Return(_packet);
            _packet = null;
        }
    }

    /// <inheritdoc cref="Clear"/>
    public void Dispose() => Clear();
}
