using System.Buffers;
using System.Security.Cryptography;

namespace Ossuary.Native;

/// <summary>
/// Where the session decrypts one record before it is copied into the C caller's buffer. The
/// buffer is rented from <see cref="ArrayPool{T}.Shared"/> for the record and returned by
/// <see cref="Clear"/>, so an idle connection holds none.
/// </summary>
internal sealed class PooledPlaintext : IBufferWriter<byte>
{
    private byte[]? _buffer;

    public int WrittenCount { get; private set; }

    public ReadOnlySpan<byte> WrittenSpan => _buffer is null ? default : _buffer.AsSpan(0, WrittenCount);

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, (_buffer?.Length ?? 0) - WrittenCount);
        WrittenCount += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0) => Reserve(sizeHint).AsMemory(WrittenCount);

    public Span<byte> GetSpan(int sizeHint = 0) => Reserve(sizeHint).AsSpan(WrittenCount);

    /// <summary>Wipes what was written and gives the buffer back to the pool.</summary>
    public void Clear()
    {
        if (_buffer is not null)
        {
            // A decrypted message left in a pooled array would outlive the caller's copy of it.
            CryptographicOperations.ZeroMemory(_buffer.AsSpan(0, WrittenCount));
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }

        WrittenCount = 0;
    }

    private byte[] Reserve(int sizeHint)
    {
        int needed = WrittenCount + Math.Max(sizeHint, 1);
        if (_buffer is null)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(needed);
        }
        else if (_buffer.Length < needed)
        {
            byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, needed));
            _buffer.AsSpan(0, WrittenCount).CopyTo(larger);
            CryptographicOperations.ZeroMemory(_buffer.AsSpan(0, WrittenCount));
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }

        return _buffer;
    }
}
