using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// A memory pool that catches lifetime mistakes, in the manner of Kestrel's DiagnosticMemoryPool:
/// every rental is tracked; a returned block is filled with <see cref="Poison"/> and kept for
/// reuse, so a reader that outlives its rental reads poison (and the test's bytes come back
/// wrong), and a writer that does scribbles on poison, which is checked when the block is rented
/// again and at the end; a block returned twice, and blocks still rented at the end, are reported.
/// </summary>
internal sealed class DiagnosticMemoryPool(int blockSize) : MemoryPool<byte>
{
    public const byte Poison = 0xDD;

    private readonly ConcurrentDictionary<Rental, StackTrace> _rented = new();
    private readonly ConcurrentQueue<byte[]> _free = new();
    private readonly ConcurrentQueue<string> _errors = new();
    private long _rentals;

    public override int MaxBufferSize => blockSize;

    /// <summary>Rentals so far: a test checks that traffic went through the pool at all.</summary>
    public long Rentals => Interlocked.Read(ref _rentals);

    public IReadOnlyCollection<string> Errors => [.. _errors];

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        if (minBufferSize > blockSize)
        {
            throw new ArgumentOutOfRangeException(nameof(minBufferSize), minBufferSize, $"This pool's blocks are {blockSize} bytes.");
        }

        if (!_free.TryDequeue(out byte[]? bytes))
        {
            bytes = new byte[blockSize];
        }
        else
        {
            CheckPoison(bytes, "when it was rented again");
        }

        // A new owner per rental (the bytes are reused): a second Dispose of one rental is caught
        // even after the block has gone to someone else.
        var rental = new Rental(this, bytes);
        Interlocked.Increment(ref _rentals);
        _rented[rental] = new StackTrace(1, fNeedFileInfo: false);
        return rental;
    }

    /// <summary>
    /// Waits (bounded: returns happen as pipes complete, some after the test's last await) until
    /// nothing is rented, then asserts that nothing went wrong: no double return, no write after
    /// return, no block still rented.
    /// </summary>
    public async Task AssertAllReturnedAsync(TimeSpan? within = null)
    {
        var deadline = Stopwatch.StartNew();
        while (!_rented.IsEmpty && deadline.Elapsed < (within ?? TestTimeout.Default))
        {
            await Task.Delay(20);
        }

        foreach (byte[] free in _free)
        {
            CheckPoison(free, "(found at the end)");
        }

        string stillRented = string.Join("\n---\n", _rented.Values.Take(3).Select(stack => stack.ToString()));
        Assert.True(_rented.IsEmpty, $"{_rented.Count} block(s) never returned; rented at:\n{stillRented}");
        Assert.Empty(Errors);
    }

    protected override void Dispose(bool disposing)
    {
    }

    private void CheckPoison(byte[] bytes, string when)
    {
        int at = bytes.AsSpan().IndexOfAnyExcept(Poison);
        if (at >= 0)
        {
            _errors.Enqueue($"A block was written after it was returned {when}: byte {at} is 0x{bytes[at]:X2}, not poison.");
        }
    }

    private void Return(Rental rental, byte[] bytes)
    {
        if (!_rented.TryRemove(rental, out _))
        {
            _errors.Enqueue($"A block was returned twice:\n{new StackTrace(2, fNeedFileInfo: false)}");
            return;
        }

        bytes.AsSpan().Fill(Poison);
        _free.Enqueue(bytes);
    }

    private sealed class Rental(DiagnosticMemoryPool pool, byte[] bytes) : IMemoryOwner<byte>
    {
        private volatile bool _returned;

        public Memory<byte> Memory
        {
            get
            {
                if (_returned)
                {
                    pool._errors.Enqueue($"A returned block's memory was asked for:\n{new StackTrace(1, fNeedFileInfo: false)}");
                }

                return bytes;
            }
        }

        public void Dispose()
        {
            _returned = true;
            pool.Return(this, bytes);
        }
    }
}
