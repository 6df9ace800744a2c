using System.Buffers;
using Ossuary.Pipelines.Crypto;

namespace Ossuary.Pipelines.Fuzzing;

/// <summary>Thrown when a fuzz target sees the library break one of its invariants: a bug, reported as a crash.</summary>
internal sealed class FuzzInvariantException(string message) : Exception(message);

internal static class FuzzCheck
{
    public static void That(bool condition, string invariant)
    {
        if (!condition)
        {
            throw new FuzzInvariantException(invariant);
        }
    }
}

/// <summary>A clock that moves only when the input says so, so every run of an input is the same.</summary>
internal sealed class FuzzClock : TimeProvider
{
    private long _ticks = 1_000_000;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => _ticks;

    public void Advance(TimeSpan by) => _ticks += by.Ticks;
}

/// <summary>
/// Replays a side's recorded draws (checking each size, as the draw order is part of the
/// contract), then continues with a fixed pseudo-random sequence: fresh keys after a reset must
/// not make the same input behave differently on the next run.
/// </summary>
internal sealed class FuzzRandomSource(IReadOnlyList<byte[]> draws) : RandomSource
{
    private int _next;
    private ulong _state = 0x9E3779B97F4A7C15;

    public override void Fill(Span<byte> destination)
    {
        if (_next < draws.Count)
        {
            byte[] draw = draws[_next++];
            if (draw.Length != destination.Length)
            {
                throw new FuzzInvariantException($"the session drew {destination.Length} bytes where the recording drew {draw.Length}: the draw order changed");
            }

            draw.CopyTo(destination);
            return;
        }

        for (int i = 0; i < destination.Length; i++)
        {
            // splitmix64
            _state += 0x9E3779B97F4A7C15;
            ulong z = _state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
            destination[i] = (byte)(z ^ (z >> 31));
        }
    }
}

/// <summary>
/// The plaintext destination handed to Receive. It remembers every byte of memory it lent out,
/// so a target can check that a call which produced no data left nothing (no plaintext, no
/// copied ciphertext) in the caller's memory.
/// </summary>
internal sealed class FuzzPlaintextWriter : IBufferWriter<byte>
{
    private byte[] _buffer = new byte[OssuaryProtocolLimits.MaxPlaintext + 64];
    private int _written;
    private int _lentEnd;

    public int WrittenCount => _written;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);

    /// <summary>Forgets what was written and zeroes the memory lent out, before the next call.</summary>
    public void Reset()
    {
        _buffer.AsSpan(0, Math.Max(_lentEnd, _written)).Clear();
        _written = 0;
        _lentEnd = 0;
    }

    /// <summary>True when every byte lent out but not committed is still zero.</summary>
    public bool UncommittedIsClear() => !_buffer.AsSpan(_written, Math.Max(0, _lentEnd - _written)).ContainsAnyExcept((byte)0);

    public void Advance(int count)
    {
        FuzzCheck.That(count >= 0 && _written + count <= _lentEnd, $"plaintext writer advanced by {count} past the memory it lent");
        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0) => Lend(sizeHint);

    public Span<byte> GetSpan(int sizeHint = 0) => Lend(sizeHint).Span;

    private Memory<byte> Lend(int sizeHint)
    {
        FuzzCheck.That(sizeHint >= 0 && sizeHint <= OssuaryProtocolLimits.MaxPlaintext, $"plaintext writer asked for {sizeHint} bytes, more than one packet can carry");
        int size = Math.Max(sizeHint, 1);
        if (_written + size > _buffer.Length)
        {
            Array.Resize(ref _buffer, _written + size);
        }

        _lentEnd = Math.Max(_lentEnd, _written + size);
        return _buffer.AsMemory(_written, size);
    }
}

/// <summary>A growable output for WriteHandshake and WriteData that counts what was committed.</summary>
internal sealed class FuzzOutputWriter : IBufferWriter<byte>
{
    private byte[] _buffer = new byte[1024];
    private int _written;

    public int WrittenCount => _written;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);

    public void Clear() => _written = 0;

    public void Advance(int count)
    {
        FuzzCheck.That(count >= 0 && _written + count <= _buffer.Length, $"output writer advanced by {count} past its memory");
        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        int size = Math.Max(sizeHint, 1);
        if (_written + size > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _written + size));
        }

        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;
}

/// <summary>Wire constants, restated from PROTOCOL.md rather than taken from the code under test.</summary>
internal static class OssuaryProtocolLimits
{
    public const int HeaderSize = 8;
    public const int MaxPacket = 16412;
    public const int MaxPlaintext = 16384;
    public const int ClientHandshakeBody = 84;
    public const int ServerHandshakeBody = 200;
    public const int ClientAuthenticationBody = 124;
    public const int ControlBody = 4;

    public const ushort ClientHandshake = 0x01;
    public const ushort ServerHandshake = 0x02;
    public const ushort ClientAuthentication = 0x03;
    public const ushort Disconnect = 0x10;
    public const ushort Reset = 0x11;
    public const ushort EncryptedData = 0x20;
}

/// <summary>Reads the fuzz input front to back; past the end every read yields zeros.</summary>
internal ref struct FuzzReader(ReadOnlySpan<byte> input)
{
    private readonly ReadOnlySpan<byte> _input = input;
    private int _position;

    public readonly bool AtEnd => _position >= _input.Length;

    public readonly int Remaining => Math.Max(0, _input.Length - _position);

    public byte Byte() => _position < _input.Length ? _input[_position++] : (byte)0;

    public ushort UInt16() => (ushort)((Byte() << 8) | Byte());

    /// <summary>Up to <paramref name="count"/> bytes: fewer if the input ends first.</summary>
    public ReadOnlySpan<byte> Bytes(int count)
    {
        int take = Math.Min(count, Remaining);
        ReadOnlySpan<byte> bytes = _input.Slice(_position, take);
        _position += take;
        return bytes;
    }
}
