using System.Buffers;

namespace Ossuary.Pipelines.Benchmarks.Support;

/// <summary>
/// An <see cref="IBufferWriter{T}"/> over one preallocated array that never grows: the
/// benchmarks reset it between operations, so writing into it allocates nothing.
/// </summary>
internal sealed class FixedBufferWriter(byte[] buffer) : IBufferWriter<byte>
{
    private int _written;

    public FixedBufferWriter(int capacity)
        : this(new byte[capacity])
    {
    }

    public int WrittenCount => _written;

    public ReadOnlyMemory<byte> WrittenMemory => buffer.AsMemory(0, _written);

    public ReadOnlySpan<byte> WrittenSpan => buffer.AsSpan(0, _written);

    public void Reset() => _written = 0;

    public void Advance(int count)
    {
        if ((uint)count > (uint)(buffer.Length - _written))
        {
            throw new InvalidOperationException("Advanced past the end of the buffer.");
        }

        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0) => buffer.AsMemory(Reserve(sizeHint));

    public Span<byte> GetSpan(int sizeHint = 0) => buffer.AsSpan(Reserve(sizeHint));

    private int Reserve(int sizeHint)
    {
        if (sizeHint > buffer.Length - _written)
        {
            throw new InvalidOperationException($"The fixed buffer has {buffer.Length - _written} bytes left; {sizeHint} were asked for.");
        }

        return _written;
    }
}
