using System.Buffers;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Native;

/// <summary>
/// Packets the session has written that the C caller has not taken yet. libossuary writes each
/// packet into an internal buffer and hands out as much as the caller's buffer holds; the rest
/// waits here for the next send call or <c>ossuary_flush</c>.
/// </summary>
/// <remarks>
/// The buffer is rented from <see cref="ArrayPool{T}.Shared"/> when a packet is written and
/// returned as soon as the caller has taken every byte: an idle connection holds none (a C server
/// keeps thousands of them, and a 16 KiB buffer each was most of its memory).
/// </remarks>
internal sealed class OutboundQueue : IBufferWriter<byte>, IDisposable
{
    /// <summary>
    /// How much unsent output <c>ossuary_send_data</c> lets pile up before it refuses more: a
    /// caller that never flushes must not grow the queue without bound.
    /// </summary>
    public const int MaxPending = 4 * OssuarySession.MaxPacketLength;

    private const int MinimumRent = 256;

    private byte[]? _buffer;
    private int _start;
    private int _end;

    public int Length => _end - _start;

    /// <summary>Bytes ever queued: a position in the stream of output.</summary>
    public long Queued { get; private set; }

    /// <summary>Bytes ever handed out.</summary>
    public long Drained { get; private set; }

    public bool IsEmpty => _start == _end;

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, (_buffer?.Length ?? 0) - _end);
        _end += count;
        Queued += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        return Reserve(sizeHint).AsMemory(_end);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        return Reserve(sizeHint).AsSpan(_end);
    }

    /// <summary>Moves as many queued bytes as fit into <paramref name="destination"/>.</summary>
    public int DrainTo(Span<byte> destination)
    {
        if (_buffer is null)
        {
            return 0;
        }

        int count = Math.Min(Length, destination.Length);
        _buffer.AsSpan(_start, count).CopyTo(destination);
        _start += count;
        Drained += count;
        if (_start == _end)
        {
            _start = _end = 0;
            ReturnBuffer();
        }

        return count;
    }

    /// <summary>
    /// Drops every queued byte, as if it had been handed out: for output that must never reach
    /// the peer (the packets of a session that has been replaced before any byte went out).
    /// </summary>
    public void Discard()
    {
        _start = _end = 0;
        Queued = Drained;
        ReturnBuffer();
    }

    /// <summary>Gives the buffer back to the pool; queued bytes are dropped (the connection is going away).</summary>
    public void Dispose()
    {
        _start = _end = 0;
        ReturnBuffer();
    }

    private byte[] Reserve(int sizeHint)
    {
        int needed = Math.Max(sizeHint, 1);
        if (_buffer is null)
        {
            // The smallest that holds a handshake packet or a small record: the pool's buckets start at 16 bytes.
            _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(needed, MinimumRent));
            return _buffer;
        }

        if (_buffer.Length - _end >= needed)
        {
            return _buffer;
        }

        if (_start > 0)
        {
            _buffer.AsSpan(_start, Length).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }

        if (_buffer.Length - _end < needed)
        {
            byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _end + needed));
            _buffer.AsSpan(0, _end).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }

        return _buffer;
    }

    private void ReturnBuffer()
    {
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
    }
}
