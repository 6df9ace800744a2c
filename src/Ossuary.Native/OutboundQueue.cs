using System.Buffers;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Native;

/// <summary>
/// Packets the session has written that the C caller has not taken yet. libossuary writes each
/// packet into an internal buffer and hands out as much as the caller's buffer holds; the rest
/// waits here for the next send call or <c>ossuary_flush</c>.
/// </summary>
internal sealed class OutboundQueue : IBufferWriter<byte>
{
    /// <summary>
    /// How much unsent output <c>ossuary_send_data</c> lets pile up before it refuses more: a
    /// caller that never flushes must not grow the queue without bound.
    /// </summary>
    public const int MaxPending = 4 * OssuarySession.MaxPacketLength;

    private byte[] _buffer = new byte[OssuarySession.MaxPacketLength];
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
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _buffer.Length - _end);
        _end += count;
        Queued += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsMemory(_end);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsSpan(_end);
    }

    /// <summary>Moves as many queued bytes as fit into <paramref name="destination"/>.</summary>
    public int DrainTo(Span<byte> destination)
    {
        int count = Math.Min(Length, destination.Length);
        _buffer.AsSpan(_start, count).CopyTo(destination);
        _start += count;
        Drained += count;
        if (_start == _end)
        {
            _start = _end = 0;
        }

        return count;
    }

    private void Reserve(int sizeHint)
    {
        int needed = Math.Max(sizeHint, 1);
        if (_buffer.Length - _end >= needed)
        {
            return;
        }

        if (_start > 0)
        {
            _buffer.AsSpan(_start, Length).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }

        if (_buffer.Length - _end < needed)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _end + needed));
        }
    }
}
