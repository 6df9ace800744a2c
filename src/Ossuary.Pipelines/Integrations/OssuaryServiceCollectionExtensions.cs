using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Ossuary.Pipelines.Configuration;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>Service registrations for hosts that serve or connect with Ossuary.</summary>
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

    /// <summary>
    /// Registers <see cref="OssuaryServerOptions"/> named <paramref name="optionsName"/> (default: the
    /// default name), validated at start-up (<c>ValidateOnStart</c>: key files are read then), for
    /// <c>listen.UseOssuary()</c> or <c>listen.UseOssuary(optionsName)</c>. Configure them further with the
    /// returned builder (an <see cref="OssuaryServerOptions.IdentitySelector"/>, an <see cref="OssuaryServerOptions.AuthorizeClient"/>).
    /// </summary>
    public static OptionsBuilder<OssuaryServerOptions> AddOssuaryServer(this IServiceCollection services, string? optionsName = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<OssuaryServerOptions>, OssuaryOptionsValidator>());
        return services.AddOptions<OssuaryServerOptions>(optionsName ?? Options.DefaultName).ValidateOnStart();
    }

    /// <summary>
    /// As <see cref="AddOssuaryServer(IServiceCollection, string?)"/>, bound from <paramref name="configuration"/>
    /// (e.g. <c>builder.Configuration.GetSection("Ossuary")</c>): <c>Mode</c>, <c>IdentityKeyFile</c>,
    /// <c>AuthorizedClientKeys</c> (hex strings), <c>AuthorizedKeysFile</c>, <c>HandshakeTimeout</c>,
    /// <c>HandshakeStepTimeout</c>. The binding is source-generated (works under NativeAOT) and
    /// follows configuration reloads: the next connection uses the new options.
    /// </summary>
    public static OptionsBuilder<OssuaryServerOptions> AddOssuaryServer(this IServiceCollection services, IConfiguration configuration, string? optionsName = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        OptionsBuilder<OssuaryServerOptions> builder = services.AddOssuaryServer(optionsName);
        builder.Configure(options => OssuaryServerSettings.Apply(configuration, options));
        services.AddSingleton<IOptionsChangeTokenSource<OssuaryServerOptions>>(new ConfigurationChangeTokenSource<OssuaryServerOptions>(builder.Name, configuration));
        return builder;
    }

    /// <summary>
    /// Registers <see cref="OssuaryClientOptions"/> (validated at start-up), an <see cref="OssuaryConnectionFactory"/>
    /// that follows them and logs and meters through the host, and makes it the host's <see cref="IConnectionFactory"/>
    /// unless one is registered already.
    /// </summary>
    public static OptionsBuilder<OssuaryClientOptions> AddOssuaryClient(this IServiceCollection services, Action<OssuaryClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<OssuaryClientOptions>, OssuaryOptionsValidator>());
        services.TryAddSingleton(provider => new OssuaryConnectionFactory(
            provider.GetRequiredService<IOptionsMonitor<OssuaryClientOptions>>(),
            Options.DefaultName,
            provider.GetService<ILoggerFactory>(),
            provider.GetService<IMeterFactory>()));
        services.TryAddSingleton<IConnectionFactory>(provider => provider.GetRequiredService<OssuaryConnectionFactory>());
        OptionsBuilder<OssuaryClientOptions> builder = services.AddOptions<OssuaryClientOptions>().ValidateOnStart();
        if (configure is not null)
        {
            builder.Configure(configure);
        }

        return builder;
    }

    /// <summary>
    /// As <see cref="AddOssuaryClient(IServiceCollection, Action{OssuaryClientOptions}?)"/>, bound from
    /// <paramref name="configuration"/>: <c>IdentityKeyFile</c>, <c>TrustedServerKeys</c> (hex strings),
    /// <c>ConnectTimeout</c>, <c>HandshakeTimeout</c>, <c>HandshakeStepTimeout</c>; source-generated, reloaded on change.
    /// </summary>
    public static OptionsBuilder<OssuaryClientOptions> AddOssuaryClient(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        OptionsBuilder<OssuaryClientOptions> builder = services.AddOssuaryClient();
        builder.Configure(options => OssuaryClientSettings.Apply(configuration, options));
        services.AddSingleton<IOptionsChangeTokenSource<OssuaryClientOptions>>(new ConfigurationChangeTokenSource<OssuaryClientOptions>(builder.Name, configuration));
        return builder;
    }
}
