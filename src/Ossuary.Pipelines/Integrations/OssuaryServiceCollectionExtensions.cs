using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;

namespace Ossuary.Pipelines.Integrations;

/// <summary>Service registrations for hosts that serve Ossuary.</summary>
public static class OssuaryServiceCollectionExtensions
{
    /// <summary>
    /// Makes Kestrel's transports use <see cref="LargeBlockMemoryPoolFactory"/>: large receive blocks
    /// for servers that mainly move bulk data (file transfer, streams of large messages). Every
    /// transport in the host uses the pool; read <see cref="LargeBlockMemoryPoolFactory"/> first.
    /// </summary>
    /// <param name="services">The host's services.</param>
    /// <param name="blockSize">Bytes per block (4 KiB to 1 MiB); 64 KiB by default.</param>
    /// <returns><paramref name="services"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="blockSize"/> is outside its range.</exception>
    public static IServiceCollection AddLargeBlockMemoryPool(this IServiceCollection services, int blockSize = LargeBlockMemoryPoolFactory.DefaultBlockSize)
    {
        ArgumentNullException.ThrowIfNull(services);
        var factory = new LargeBlockMemoryPoolFactory(blockSize);

        // The last registration is the one resolved, whether Kestrel registered its own before or not.
        services.AddSingleton<IMemoryPoolFactory<byte>>(factory);
        return services;
    }
}
