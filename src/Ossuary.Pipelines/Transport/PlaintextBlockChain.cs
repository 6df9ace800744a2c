using System.Buffers;
using Block = Ossuary.Pipelines.Transport.PlaintextMemoryPool.Block;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// The chain of pooled plaintext blocks (<see cref="PlaintextMemoryPool"/>) behind <see cref="PlaintextInput"/>
/// and <see cref="PlaintextOutput"/>: the writer's memory at its tail, the committed bytes a read is given,
/// positions in it, consuming and releasing blocks.
/// </summary>
/// <remarks>
/// A mutable struct held as a field of its owner, so that an idle owner carries no object of its own for it:
/// call it on that field, never on a copy. It takes no lock; the owner calls it under its own, and keeps its own
/// waiting, cancellation, pause and completion.
/// </remarks>
internal struct PlaintextBlockChain
{
    // The smallest block rented, as a pipe's minimum segment: a larger write asks for its own length.
    private const int MinimumBlockSize = 4096;

    // From the first unconsumed byte (_head at _headStart) to the end of the committed bytes (_committedBlock at
    // _committedEnd) and on to the end of what the writer advanced (_tail at _tailEnd).
    private Block? _head;
    private int _headStart;
    private Block? _committedBlock;
    private int _committedEnd;
    private Block? _tail;
    private int _tailEnd;

    // Positions counted from the owner's first byte (a block's RunningIndex is its first byte's).
    private long _consumed;
    private long _committed;

    // Advanced, not committed. Written with Volatile.Write: the output reports it without taking its lock.
    private long _unflushed;

    private bool _writerHoldsMemory; // from the writer's Rent to its Advance

    // Whether each end has completed; what completing does is the owner's. Here, not in the owner, because here
    // they fill the struct's end padding: the input's own flags fill a word, and they made the input 8 B larger.
    private bool _writerCompleted;
    private bool _readerCompleted;

    /// <summary>True once the writer has completed (<see cref="CompleteWriter"/>): nothing more is rented.</summary>
    public readonly bool WriterCompleted => _writerCompleted;

    /// <summary>True once the reader has completed (<see cref="CompleteReader"/>).</summary>
    public readonly bool ReaderCompleted => _readerCompleted;

    /// <summary>The position of the first byte not consumed.</summary>
    public readonly long Consumed => _consumed;

    /// <summary>The position after the last committed byte.</summary>
    public readonly long Committed => _committed;

    /// <summary>Committed bytes not consumed yet.</summary>
    public readonly long Unconsumed => _committed - _consumed;

    /// <summary>Advanced bytes not committed yet; safe to read without the owner's lock.</summary>
    public long Unflushed => Volatile.Read(ref _unflushed);

    /// <summary>The committed bytes not consumed yet, as a read is given them.</summary>
    public readonly ReadOnlySequence<byte> Readable => _committed > _consumed
        ? new ReadOnlySequence<byte>(_head!, _headStart, _committedBlock!, _committedEnd)
        : ReadOnlySequence<byte>.Empty;

    /// <summary>
    /// The writer's memory: what is left of the tail block if at least <paramref name="sizeHint"/> bytes
    /// (one if zero), else a new block linked after it.
    /// </summary>
    public Memory<byte> Rent(int sizeHint)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sizeHint);
        if (_writerCompleted)
        {
            throw new InvalidOperationException("Writing is not allowed after writer was completed.");
        }

        int size = Math.Max(sizeHint, 1);
        if (_tail is null || _tail.Array.Length - _tailEnd < size)
        {
            Block block = PlaintextMemoryPool.Instance.RentBlock(Math.Max(sizeHint, MinimumBlockSize));
            if (_tail is null)
            {
                block.StartChain(_committed);
                _head = block;
                _headStart = 0;
                _committedBlock = block;
                _committedEnd = 0;
            }
            else
            {
                _tail.SetLength(_tailEnd);
                block.StartChain(_tail.RunningIndex + _tailEnd);
                _tail.Link(block);
            }

            _tail = block;
            _tailEnd = 0;
        }

        _writerHoldsMemory = true;
        return new Memory<byte>(_tail.Array, _tailEnd, _tail.Array.Length - _tailEnd);
    }

    /// <summary>Takes <paramref name="bytes"/> the writer wrote into its memory: the next commit makes them readable.</summary>
    public void Advance(int bytes)
    {
        EndWrite(bytes);
        _tailEnd += bytes;
        Volatile.Write(ref _unflushed, _unflushed + bytes);
    }

    /// <summary>
    /// An Advance whose bytes the owner does not take (nothing reads them any more): checked as one, and the
    /// memory stays the writer's, handed out again by the next <see cref="Rent"/>.
    /// </summary>
    public void Drop(int bytes) => EndWrite(bytes);

    /// <summary>
    /// The writer has completed: nothing more is rented, and memory it was given is no longer its own, so the
    /// blocks can go once all is consumed. The caller commits first what it wants read.
    /// </summary>
    public void CompleteWriter()
    {
        _writerCompleted = true;
        _writerHoldsMemory = false;
    }

    /// <summary>The reader has completed. The blocks stay until the owner takes the chain, once the writer has completed too.</summary>
    public void CompleteReader() => _readerCompleted = true;

    /// <summary>Makes what was advanced readable; returns how many bytes that was.</summary>
    public long Commit()
    {
        long bytes = _unflushed;
        if (bytes == 0)
        {
            return 0;
        }

        _tail!.SetLength(_tailEnd);
        _committedBlock = _tail;
        _committedEnd = _tailEnd;
        _committed += bytes;
        Volatile.Write(ref _unflushed, 0);
        return bytes;
    }

    /// <summary>The position of <paramref name="position"/>, a position in a sequence this chain handed out (the empty sequence's is <see cref="Consumed"/>).</summary>
    public readonly long PositionOf(SequencePosition position) =>
        position.GetObject() is Block block ? block.RunningIndex + position.GetInteger() : _consumed;

    /// <summary>
    /// Moves the head to <paramref name="consumedAt"/> (the caller has checked it is within the committed bytes);
    /// returns the blocks now wholly consumed, to <see cref="Release"/> outside the lock: every block once all
    /// is consumed and the writer holds no memory.
    /// </summary>
    public (Block? Free, Block? End) Consume(SequencePosition consumed, long consumedAt)
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
            // Everything read and nothing in the writer's hands: every block goes back.
            return (TakeChain(), null);
        }

        _head = first;
        _headStart = start;
        return free == first ? (null, null) : (free, first);
    }

    /// <summary>Unlinks the whole chain (both ends done, or nothing left in it), what was advanced counted as committed and consumed; returns its head.</summary>
    public Block? TakeChain()
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
    public static void Release(Block? free, Block? end)
    {
        while (free is not null && free != end)
        {
            Block? next = free.NextBlock; // before Dispose, which unlinks it
            free.Dispose();
            free = next;
        }
    }

    private void EndWrite(int bytes)
    {
        if (bytes < 0 || (_tail is null ? bytes > 0 : bytes > _tail.Array.Length - _tailEnd))
        {
            throw new ArgumentOutOfRangeException(nameof(bytes));
        }

        _writerHoldsMemory = false;
    }
}
