using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Gives Kestrel's transports <see cref="DiagnosticMemoryPool"/>s (registered as its <see cref="IMemoryPoolFactory{T}"/>) and keeps them for the test's checks.</summary>
internal sealed class DiagnosticMemoryPoolFactory(int blockSize) : IMemoryPoolFactory<byte>
{
    private readonly ConcurrentQueue<DiagnosticMemoryPool> _pools = new();

    public IReadOnlyCollection<DiagnosticMemoryPool> Pools => [.. _pools];

    public long Rentals => _pools.Sum(pool => pool.Rentals);

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null)
    {
        var pool = new DiagnosticMemoryPool(blockSize);
        _pools.Enqueue(pool);
        return pool;
    }

    /// <inheritdoc cref="DiagnosticMemoryPool.AssertAllReturnedAsync"/>
    public async Task AssertAllReturnedAsync()
    {
        foreach (DiagnosticMemoryPool pool in _pools)
        {
            await pool.AssertAllReturnedAsync();
        }
    }
}
