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
    /// Registers the default <see cref="OssuaryServerOptions"/>, validated at start-up (<c>ValidateOnStart</c>:
    /// key files are read then), for <c>listen.UseOssuary()</c>. Set them with the returned builder
    /// (<c>.Configure(o =&gt; ...)</c>: an <see cref="OssuaryServerOptions.IdentitySelector"/>, an
    /// <see cref="OssuaryServerOptions.AuthorizeClient"/>, anything configuration cannot say).
    /// </summary>
    public static OptionsBuilder<OssuaryServerOptions> AddOssuaryServer(this IServiceCollection services) =>
        services.AddOssuaryServer(Options.DefaultName);

    /// <summary>
    /// Registers <see cref="OssuaryServerOptions"/> named <paramref name="optionsName"/>, validated at
    /// start-up, for <c>listen.UseOssuary(optionsName)</c>: one name per endpoint.
    /// </summary>
    public static OptionsBuilder<OssuaryServerOptions> AddOssuaryServer(this IServiceCollection services, string optionsName)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(optionsName);
        services.TryAddSingleton<FollowedKeyFiles>();
        services.TryAddSingleton<NamedPlanSources>(); // what UseOssuary starts ends with the services, started or not
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<OssuaryServerOptions>, OssuaryOptionsValidator>());
        return services.AddOptions<OssuaryServerOptions>(optionsName).ValidateOnStart();
    }

    /// <summary>
    /// Registers the default <see cref="OssuaryServerOptions"/>, bound from <paramref name="configuration"/>
    /// (e.g. <c>builder.Configuration.GetSection("Ossuary")</c>): <c>Mode</c>, <c>IdentityKeyFile</c>,
    /// <c>AuthorizedClientKeys</c> (hex strings), <c>AuthorizedKeysFile</c>, <c>HandshakeTimeout</c>,
    /// <c>HandshakeStepTimeout</c>, <c>TcpKeepAlive</c>. The binding is source-generated (works under NativeAOT), validated
    /// at start-up, and follows configuration reloads: the next connection uses the new options.
    /// </summary>
    public static OptionsBuilder<OssuaryServerOptions> AddOssuaryServer(this IServiceCollection services, IConfiguration configuration) =>
        services.AddOssuaryServer(configuration, Options.DefaultName);

    /// <summary>
    /// As <see cref="AddOssuaryServer(IServiceCollection, IConfiguration)"/>, for the options named <paramref name="optionsName"/>.
    /// Options of one name are bound from one section: each listener with its own allow-list takes a name of its own.
    /// </summary>
    /// <exception cref="InvalidOperationException">The options of this name are bound from a section already: the two
    /// would merge into one server's options, admitting the clients of both.</exception>
    public static OptionsBuilder<OssuaryServerOptions> AddOssuaryServer(this IServiceCollection services, IConfiguration configuration, string optionsName)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(optionsName);
        if (BoundSection.Find<OssuaryServerOptions>(services, optionsName) is { } bound)
        {
            string which = optionsName.Length == 0 ? "The default Ossuary server options are" : $"The Ossuary server options '{optionsName}' are";
            throw new InvalidOperationException(
                $"{which} bound from '{bound.Path}' already; binding '{BoundSection.PathOf(configuration)}' as well would merge the two into one allow-list, " +
                "admitting the clients of both. Give each section a name of its own: AddOssuaryServer(section, \"devices\") with listen.UseOssuary(\"devices\").");
        }

        BoundSection.Add<OssuaryServerOptions>(services, optionsName, configuration);
        OptionsBuilder<OssuaryServerOptions> builder = services.AddOssuaryServer(optionsName);
        builder.Configure(options => OssuaryServerSettings.Apply(configuration, options));
        services.AddSingleton<IOptionsChangeTokenSource<OssuaryServerOptions>>(new ConfigurationChangeTokenSource<OssuaryServerOptions>(builder.Name, configuration));
        return builder;
    }

    /// <summary>
    /// Registers <see cref="OssuaryClientOptions"/> (validated at start-up; set them with the returned
    /// builder), an <see cref="OssuaryConnectionFactory"/> that follows them and logs and meters through
    /// the host, and makes it the host's <see cref="IConnectionFactory"/> unless one is registered already.
    /// </summary>
    public static OptionsBuilder<OssuaryClientOptions> AddOssuaryClient(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton<FollowedKeyFiles>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<OssuaryClientOptions>, OssuaryOptionsValidator>());
        services.TryAddSingleton(provider => new OssuaryConnectionFactory(
            provider.GetRequiredService<IOptionsMonitor<OssuaryClientOptions>>(),
            (provider.GetServices<IOptionsChangeTokenSource<OssuaryClientOptions>>(), provider.GetRequiredService<IOptionsMonitorCache<OssuaryClientOptions>>()),
            Options.DefaultName,
            provider.GetService<ILoggerFactory>(),
            provider.GetService<IMeterFactory>(),
            provider.GetRequiredService<FollowedKeyFiles>()));
        services.TryAddSingleton<IConnectionFactory>(provider => provider.GetRequiredService<OssuaryConnectionFactory>());
        return services.AddOptions<OssuaryClientOptions>().ValidateOnStart();
    }

    /// <summary>As <see cref="AddOssuaryClient(IServiceCollection)"/>, with the options set by <paramref name="configure"/>.</summary>
    public static OptionsBuilder<OssuaryClientOptions> AddOssuaryClient(this IServiceCollection services, Action<OssuaryClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        return services.AddOssuaryClient().Configure(configure);
    }

    /// <summary>
    /// As <see cref="AddOssuaryClient(IServiceCollection)"/>, bound from <paramref name="configuration"/>:
    /// <c>IdentityKeyFile</c>, <c>TrustedServerKeys</c> (hex strings), <c>ConnectTimeout</c>,
    /// <c>HandshakeTimeout</c>, <c>HandshakeStepTimeout</c>, <c>TcpKeepAlive</c>; source-generated, reloaded on change.
    /// A host has one such client, bound from one section; to connect with other options as well, construct an
    /// <see cref="OssuaryConnectionFactory"/> with them.
    /// </summary>
    /// <exception cref="InvalidOperationException">The client is bound from a section already: the two would merge into
    /// one client's options, trusting the servers of both.</exception>
    public static OptionsBuilder<OssuaryClientOptions> AddOssuaryClient(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        if (BoundSection.Find<OssuaryClientOptions>(services, Options.DefaultName) is { } bound)
        {
            throw new InvalidOperationException(
                $"The host's Ossuary client is bound from '{bound.Path}' already; binding '{BoundSection.PathOf(configuration)}' as well would merge the two " +
                "into one client's options, trusting the servers of both. A host has one AddOssuaryClient: to connect with other options too, " +
                "construct an OssuaryConnectionFactory with them.");
        }

        BoundSection.Add<OssuaryClientOptions>(services, Options.DefaultName, configuration);
        OptionsBuilder<OssuaryClientOptions> builder = services.AddOssuaryClient();
        builder.Configure(options => OssuaryClientSettings.Apply(configuration, options));
        services.AddSingleton<IOptionsChangeTokenSource<OssuaryClientOptions>>(new ConfigurationChangeTokenSource<OssuaryClientOptions>(builder.Name, configuration));
        return builder;
    }
}
