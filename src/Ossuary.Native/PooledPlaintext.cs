using System.Buffers;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Native;

/// <summary>
/// Where the session decrypts one record before it is copied into the C caller's buffer: a block of
/// the plaintext pipes' pool, rented for the record and returned by <see cref="Clear"/>, so an idle
/// connection holds none. Its blocks are pinned and zeroed as they go back: an array of
/// <see cref="ArrayPool{T}.Shared"/>, wiped after use, could be moved by a collection while it held the
/// record (the collector runs inside the C program), leaving a copy no wiping reaches.
/// </summary>
internal sealed class PooledPlaintext : IBufferWriter<byte>
{
    private IMemoryOwner<byte>? _block;

    public int WrittenCount { get; private set; }

    public ReadOnlySpan<byte> WrittenSpan => _block is null ? default : _block.Memory.Span[..WrittenCount];

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, (_block?.Memory.Length ?? 0) - WrittenCount);
        WrittenCount += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0) => Reserve(sizeHint)[WrittenCount..];

    public Span<byte> GetSpan(int sizeHint = 0) => Reserve(sizeHint).Span[WrittenCount..];

    /// <summary>Gives the block back to the pool, which zeroes it.</summary>
    public void Clear()
    {
        _block?.Dispose();
        _block = null;
        WrittenCount = 0;
    }

    private Memory<byte> Reserve(int sizeHint)
    {
        int needed = WrittenCount + Math.Max(sizeHint, 1);
        if (_block is null)
        {
            _block = PlaintextMemoryPool.Instance.Rent(needed);
        }
        else if (_block.Memory.Length < needed)
        {
            IMemoryOwner<byte> larger = PlaintextMemoryPool.Instance.Rent(Math.Max(_block.Memory.Length * 2, needed));
            _block.Memory.Span[..WrittenCount].CopyTo(larger.Memory.Span);
            _block.Dispose();
            _block = larger;
        }

        return _block.Memory;
    }
}
