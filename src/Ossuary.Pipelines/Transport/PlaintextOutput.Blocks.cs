using Block = Ossuary.Pipelines.Transport.PlaintextMemoryPool.Block;

namespace Ossuary.Pipelines.Transport;

/// <summary>The output's chain of plaintext blocks: positions in it, consuming and releasing them.</summary>
internal sealed partial class PlaintextOutput
{
    // The chain of blocks: from the first unconsumed byte (_head at _headStart) to the end of the committed
    // bytes (_committedBlock at _committedEnd) and on to the end of what the writer advanced (_tail at _tailEnd).
    private Block? _head;
    private int _headStart;
    private Block? _committedBlock;
    private int _committedEnd;
    private Block? _tail;
    private int _tailEnd;

    // Positions counted from the output's first byte (a block's RunningIndex is its first byte's).
    private long _consumed;
    private long _committed;

    private long PositionOf(SequencePosition position) =>
        position.GetObject() is Block block ? block.RunningIndex + position.GetInteger() : _consumed;

    /// <summary>Moves the head to <paramref name="consumedAt"/>; returns the blocks now wholly consumed, to release outside the lock.</summary>
    private (Block? Free, Block? End) Consume(SequencePosition consumed, long consumedAt)
    {
        if (consumedAt == _consumed || consumed.GetObject() is not Block at)
        {
            return (null, null);
        }

        Block? free = _head;
        Block first = at;
        int start = consumed.GetInteger();
        if (start == at.Memory.Length && at != _tail && at.NextBlock is { } next)
        {
            first = next; // consumed to the end of a block the writer has left
            start = 0;
        }

        _consumed = consumedAt;
        if (_consumed == _committed && _unflushed == 0 && !_writerHoldsMemory)
        {
            // Everything sent and nothing in the application's hands: every block goes back.
            return (TakeChain(), null);
        }

        _head = first;
        _headStart = start;
        return free == first ? (null, null) : (free, first);
    }

    /// <summary>Unlinks the whole chain (both ends done, or nothing left in it); returns its head.</summary>
    private Block? TakeChain()
    {
        Block? free = _head;
        _head = null;
        _headStart = 0;
        _committedBlock = null;
        _committedEnd = 0;
        _tail = null;
        _tailEnd = 0;
        _committed += _unflushed;
        Volatile.Write(ref _unflushed, 0);
        _consumed = _committed;
        return free;
    }

    /// <summary>Zeroes and pools the blocks from <paramref name="free"/> up to (not including) <paramref name="end"/>.</summary>
    private static void Release(Block? free, Block? end)
    {
        while (free is not null && free != end)
        {
            Block? next = free.NextBlock; // before Dispose, which unlinks it
            free.Dispose();
            free = next;
        }
    }
}
