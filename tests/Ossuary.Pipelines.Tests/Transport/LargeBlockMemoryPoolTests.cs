using System.Buffers;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>The large-block pool for Kestrel's transports, alone and under a real Kestrel server.</summary>
public class LargeBlockMemoryPoolTests
{
    [Fact]
    public async Task KestrelReceivesIntoTheRegisteredPoolAndBulkDataSurvives()
    {
        await using var server = await AuthenticatedEchoServer.StartAsync<EchoConnectionHandler>(services => services.AddLargeBlockMemoryPool());
        var factory = Assert.IsType<LargeBlockMemoryPoolFactory>(server.Server.Services.GetRequiredService<IMemoryPoolFactory<byte>>());
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.Server.EndPoint, server.ClientOptions);

        const int Length = 4 << 20;
        Task<byte[]> sent = BulkTransferTests.WriteRandomAsync(connection.Transport.Output, Length, seed: 7);
        Task<(long Length, byte[] Hash)> received = BulkTransferTests.ReadAndHashAsync(connection.Transport.Input, Length);
        await Task.WhenAll(sent, received).Within(TimeSpan.FromSeconds(30));

        (long length, byte[] hash) = await received;
        Assert.Equal(Length, length);
        Assert.Equal(Convert.ToHexString(await sent), Convert.ToHexString(hash));
        Assert.True(factory.BlocksAllocated > 0, "Kestrel never rented from the registered pool");
        Assert.Empty(server.Server.Log.Failures);
    }

    [Fact]
    public void RentalsAreWholeBlocksAndReturnedBlocksAreReused()
    {
        var factory = new LargeBlockMemoryPoolFactory(blockSize: 8192, maxRetainedBlocks: 4);
        using MemoryPool<byte> pool = factory.Create();

        IMemoryOwner<byte> first = pool.Rent(100);
        Memory<byte> firstMemory = first.Memory;
        first.Dispose();
        first.Dispose(); // a second Dispose must not queue the block twice
        using IMemoryOwner<byte> again = pool.Rent();
        using IMemoryOwner<byte> other = pool.Rent(8192);

        Assert.Equal(8192, pool.MaxBufferSize);
        Assert.Equal(8192, firstMemory.Length);
        Assert.True(again.Memory.Span == firstMemory.Span, "a returned block was not reused");
        Assert.False(other.Memory.Span.Overlaps(again.Memory.Span));
        Assert.Equal(2, factory.BlocksAllocated);
    }

    [Fact]
    public void FreeBlocksBeyondTheCapAreLeftToTheCollector()
    {
        var factory = new LargeBlockMemoryPoolFactory(blockSize: 4096, maxRetainedBlocks: 2);
        using var pool = (LargeBlockMemoryPool)factory.Create();
        IMemoryOwner<byte>[] rented = [.. Enumerable.Range(0, 5).Select(_ => pool.Rent())];

        foreach (IMemoryOwner<byte> block in rented)
        {
            block.Dispose();
        }

        Assert.Equal(2, pool.RetainedBlocks);
        IMemoryOwner<byte>[] again = [.. Enumerable.Range(0, 3).Select(_ => pool.Rent())];

        Assert.Equal(0, pool.RetainedBlocks);
        Assert.Equal(6, factory.BlocksAllocated); // two kept blocks reused, one made anew
        Assert.All(again, block => block.Dispose());
    }

    [Fact]
    public void OversizedRentalsAndRentalsFromADisposedPoolAreRefused()
    {
        MemoryPool<byte> pool = new LargeBlockMemoryPoolFactory(blockSize: 4096).Create();

        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(4097));
        IMemoryOwner<byte> held = pool.Rent();
        pool.Dispose();
        held.Dispose(); // returning after the pool is gone is harmless
        Assert.Throws<ObjectDisposedException>(() => pool.Rent());
    }

    [Theory]
    [InlineData(4095, 0)]
    [InlineData(1024 * 1024 + 1, 0)]
    [InlineData(65536, -1)]
    public void FactoryRefusesSizesOutsideItsRange(int blockSize, int maxRetained) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new LargeBlockMemoryPoolFactory(blockSize, maxRetained));

    [Fact]
    public void AddLargeBlockMemoryPoolValidatesTheSizeAtOnceAndWinsOverAnEarlierRegistration()
    {
        var services = new ServiceCollection();
        services.AddSingleton<IMemoryPoolFactory<byte>>(new LargeBlockMemoryPoolFactory(8192));

        Assert.Throws<ArgumentOutOfRangeException>(() => services.AddLargeBlockMemoryPool(blockSize: 100));
        services.AddLargeBlockMemoryPool(blockSize: 32768);

        using ServiceProvider provider = services.BuildServiceProvider();
        Assert.Equal(32768, Assert.IsType<LargeBlockMemoryPoolFactory>(provider.GetRequiredService<IMemoryPoolFactory<byte>>()).BlockSize);
    }
}
