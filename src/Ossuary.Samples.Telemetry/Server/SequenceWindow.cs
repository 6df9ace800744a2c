namespace Ossuary.Samples.Telemetry.Server;

/// <summary>
/// Which of a device's sequence numbers arrived, over the last <see cref="Size"/> numbers below the
/// highest seen (as IPsec's replay window does), so that a reading arriving late (over a second
/// connection, or resent after a reconnect) fills the gap it left instead of counting as a repeat
/// with its gap still counted. Each number keeps a 16-bit hash of its reading, so that another reading
/// under a number that arrived (a device that restarted its numbering) is not counted as a repeat: the
/// store keeps it as new data (16 bits: a fleet's devices each hold 2 KiB for it, and a reused number whose
/// other reading's hash matches by chance, one in 65,536, counts as a repeat, which the store does not count).
/// Memory stays fixed per device (about 2 KiB); a number older than the window cannot be told apart and
/// counts as a repeat (its gap, if it was one, stays counted).
/// </summary>
internal sealed class SequenceWindow
{
    /// <summary>How many numbers below the highest one are remembered.</summary>
    public const int Size = 1024;

    private readonly ulong[] _seen = new ulong[Size / 64]; // bit i: highest - i arrived
    private readonly ushort[] _measurements = new ushort[Size]; // at sequence % Size: the hash of the reading that arrived under it
    private long _highest = -1;
    private long _lowest = -1;

    /// <summary>Numbers between the lowest and the highest seen that have not arrived.</summary>
    public long Gaps { get; private set; }

    /// <summary>Numbers that arrived again with the same reading (<c>measurement</c>), or too late to tell.</summary>
    public long Repeats { get; private set; }

    /// <summary>Counts <paramref name="sequence"/> (not negative) as arrived, with <paramref name="measurement"/>, a hash of its reading.</summary>
    public void Record(long sequence, ulong measurement = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sequence);
        ushort folded = (ushort)(measurement ^ (measurement >> 16) ^ (measurement >> 32) ^ (measurement >> 48));
        ref ushort kept = ref _measurements[(int)(sequence % Size)]; // the window's numbers differ modulo its size
        if (_highest < 0)
        {
            // The first number sets the start: a device may begin anywhere.
            _highest = _lowest = sequence;
            _seen[0] = 1;
            kept = folded;
            return;
        }

        if (sequence > _highest)
        {
            long ahead = sequence - _highest;
            Gaps += ahead - 1;
            Shift(ahead);
            _highest = sequence;
            _seen[0] |= 1;
            kept = folded;
            return;
        }

        long behind = _highest - sequence;
        if (behind >= Size)
        {
            Repeats++;
            return;
        }

        int word = (int)(behind / 64);
        ulong bit = 1UL << (int)(behind % 64);
        if ((_seen[word] & bit) != 0)
        {
            // Another reading under it is a device numbering from the start again: new data, not a repeat.
            if (kept == folded)
            {
                Repeats++;
            }

            return;
        }

        _seen[word] |= bit;
        kept = folded;
        if (sequence < _lowest)
        {
            // Below the start: the numbers between it and the old start were never counted.
            Gaps += _lowest - sequence - 1;
            _lowest = sequence;
        }
        else
        {
            Gaps--; // counted as missing when a higher number skipped it
        }
    }

    private void Shift(long by)
    {
        if (by >= Size)
        {
            Array.Clear(_seen);
            return;
        }

        int words = (int)(by / 64);
        int bits = (int)(by % 64);
        for (int i = _seen.Length - 1; i >= 0; i--)
        {
            ulong from = i - words >= 0 ? _seen[i - words] : 0;
            ulong carry = bits > 0 && i - words - 1 >= 0 ? _seen[i - words - 1] >> (64 - bits) : 0;
            _seen[i] = (bits > 0 ? from << bits : from) | carry;
        }
    }
}
