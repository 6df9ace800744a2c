using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Ossuary.Pipelines.Configuration;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary><c>UseOssuary</c> for Kestrel's <c>ListenOptions</c> and any other <see cref="IConnectionBuilder"/>.</summary>
public static class OssuaryConnectionBuilderExtensions
{
    /// <summary>
    /// Secures every connection with Ossuary before the rest of the pipeline sees it: the next
    /// middleware gets a plaintext <see cref="ConnectionContext.Transport"/> and an
    /// <see cref="IOssuaryConnectionFeature"/>. The options are validated and copied now; their
    /// <see cref="OssuaryServerOptions.AuthorizedKeysFile"/>, if any, is watched and reloaded on change.
    /// The listeners of a host given equal options (the same settings, the same key objects and callbacks)
    /// share what follows them (the file watcher, the key read from a key file, a generated key): an endpoint
    /// Kestrel rebinds on a configuration reload takes it over, and none is left behind. A rebind with other
    /// options gets its own, and the previous stays until the host stops (a host that never started: until its
    /// services, and with them its logger factory, are disposed); options that change belong in
    /// configuration (<c>AddOssuaryServer(section, name)</c> and <c>UseOssuary(name)</c>).
    /// </summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="InvalidOperationException">The options are invalid; the message says what to fix.</exception>
    /// <exception cref="FormatException">A key file named by the options is malformed; the message names the file.</exception>
    /// <exception cref="IOException">A key file named by the options cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">A key file named by the options may not be read (or, for a secret key, may be read by others; for an authorized-keys file, written by others; or is owned by another user).</exception>
    public static TBuilder UseOssuary<TBuilder>(this TBuilder builder, OssuaryServerOptions options)
        where TBuilder : IConnectionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        return builder.UseOssuary(options, null, Options.DefaultName);
    }

    /// <summary>
    /// Configures a fresh <see cref="OssuaryServerOptions"/> and secures every connection with it; listeners
    /// for which <paramref name="configure"/> makes equal options share one source, as with the options given.
    /// </summary>
    /// <inheritdoc cref="UseOssuary{TBuilder}(TBuilder, OssuaryServerOptions)" path="/exception"/>
    public static TBuilder UseOssuary<TBuilder>(this TBuilder builder, Action<OssuaryServerOptions> configure)
        where TBuilder : IConnectionBuilder
    {
        ArgumentNullException.ThrowIfNull(configure);
        var options = new OssuaryServerOptions();
        configure(options);
        return builder.UseOssuary(options);
    }

    /// <summary>
    /// Secures every connection with the default <see cref="OssuaryServerOptions"/> from the host's
    /// services (<c>services.AddOssuaryServer(...)</c>), and follows them: when the options change
    /// (configuration reload, <see cref="IOptionsMonitor{TOptions}"/>), the next connection uses the new ones.
    /// </summary>
    /// <inheritdoc cref="UseOssuary{TBuilder}(TBuilder, string)" path="/exception"/>
    public static TBuilder UseOssuary<TBuilder>(this TBuilder builder)
        where TBuilder : IConnectionBuilder =>
        builder.UseOssuary(Options.DefaultName);

    /// <summary>
    /// Secures every connection with the named <see cref="OssuaryServerOptions"/> from the host's services
    /// (<c>services.AddOssuaryServer(configuration, optionsName)</c>): one name per endpoint, e.g. a
    /// device listener and an operator listener with different allow-lists. Changes apply from the next connection.
    /// The listeners of one name in a host share what follows the options (and the authorized-keys file they
    /// name): an endpoint Kestrel rebinds on a configuration reload takes it over, and none is left behind,
    /// also while a change of the options waits to pass (the previous options stay in force meanwhile).
    /// </summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="InvalidOperationException">The builder has no services, or the options are invalid; the message says what to fix.</exception>
    /// <exception cref="FormatException">A key file named by the options is malformed; the message names the file.</exception>
    /// <exception cref="IOException">A key file named by the options cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">A key file named by the options may not be read (or, for a secret key, may be read by others; for an authorized-keys file, written by others; or is owned by another user).</exception>
    public static TBuilder UseOssuary<TBuilder>(this TBuilder builder, string optionsName)
        where TBuilder : IConnectionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(optionsName);
        var monitor = builder.ApplicationServices?.GetService(typeof(IOptionsMonitor<OssuaryServerOptions>)) as IOptionsMonitor<OssuaryServerOptions>
            ?? throw new InvalidOperationException(
                "UseOssuary() takes its options from the host's services: register them with services.AddOssuaryServer(...), or pass OssuaryServerOptions.");
        if (NamedPlanSources.Of(builder.ApplicationServices!).Find(optionsName) is { } following)
        {
            // An endpoint Kestrel rebinds: its name's source follows the options already. Read here,
            // options waiting for a change to pass (a key file not there yet) threw, and with them
            // Kestrel's reload, half-way: the endpoint stayed bound where it was, out of Kestrel's reach.
            return builder.UsePlans(following);
        }

        OssuaryServerOptions options;
        try
        {
            options = monitor.Get(optionsName);
        }
        catch (OptionsValidationException ex)
        {
            // A mistyped name reads as empty options ("needs an Identity"): say what is more likely wrong.
            string hint = IsConfigured(builder.ApplicationServices!, optionsName) ? "" :
                $" Nothing configures Ossuary options named '{optionsName}': check the name, or register them with services.AddOssuaryServer(configuration, \"{optionsName}\").";
            throw new InvalidOperationException($"The Ossuary options '{optionsName}' are invalid: {string.Join(" ", ex.Failures)}{hint}", ex);
        }

        return builder.UseOssuary(options, monitor, optionsName);
    }

    private static TBuilder UseOssuary<TBuilder>(this TBuilder builder, OssuaryServerOptions options, IOptionsMonitor<OssuaryServerOptions>? monitor, string name)
        where TBuilder : IConnectionBuilder
    {
        IServiceProvider? services = builder.ApplicationServices;
        var loggerFactory = services?.GetService(typeof(ILoggerFactory)) as ILoggerFactory;
        var meterFactory = services?.GetService(typeof(IMeterFactory)) as IMeterFactory;

        // Validated and snapshotted now, as Kestrel's UseHttps does, so bad options fail at start-up.
        // Options that follow the monitor tell its validator which authorized-keys file they follow.
        var followed = monitor is null ? null : services?.GetService(typeof(FollowedKeyFiles)) as FollowedKeyFiles;
        var lifetime = services?.GetService(typeof(IHostApplicationLifetime)) as IHostApplicationLifetime;
        NamedPlanSources? sources = services is null ? null : NamedPlanSources.Of(services);
        ServerPlanSource plans;
        if (sources is null)
        {
            plans = new ServerPlanSource(options, monitor, ChangesOf(services), name, loggerFactory, meterFactory, followed);
        }
        else if (monitor is not null)
        {
            // One per name and host: Kestrel runs this again for each rebind of a reloaded endpoint.
            plans = sources.GetOrAdd(
                name,
                () => new ServerPlanSource(options, monitor, ChangesOf(services), name, loggerFactory, meterFactory, followed),
                source => lifetime?.ApplicationStopped.Register(() => Stop(sources, name, source)));
        }
        else
        {
            // One per host and equivalent options, for the same reason: the rebound endpoint's are the same.
            plans = sources.GetOrAdd(
                options,
                () => new ServerPlanSource(options, null, null, name, loggerFactory, meterFactory),
                source => lifetime?.ApplicationStopped.Register(() => Stop(sources, null, source)));
        }

        return builder.UsePlans(plans);
    }

    private static TBuilder UsePlans<TBuilder>(this TBuilder builder, ServerPlanSource plans)
        where TBuilder : IConnectionBuilder
    {
        builder.Use(next => new OssuaryServerMiddleware(next, plans).OnConnectionAsync);
        return builder;
    }

    /// <summary>
    /// The file watcher and the options subscription live as long as the host: they end when it has
    /// stopped, or with its services (<see cref="NamedPlanSources"/>, or without <c>AddOssuaryServer</c> its
    /// logger factory) if it never started.
    /// </summary>
    private static void Stop(NamedPlanSources? sources, string? name, ServerPlanSource source)
    {
        sources?.Remove(name, source);
        source.Dispose();
    }

    /// <summary>What the options monitor follows and where it caches, so that a change it refused is seen too (<see cref="OptionsFollower{TOptions}"/>).</summary>
    private static (IEnumerable<IOptionsChangeTokenSource<OssuaryServerOptions>>, IOptionsMonitorCache<OssuaryServerOptions>)? ChangesOf(IServiceProvider? services) =>
        services?.GetService(typeof(IEnumerable<IOptionsChangeTokenSource<OssuaryServerOptions>>)) is IEnumerable<IOptionsChangeTokenSource<OssuaryServerOptions>> sources
        && services.GetService(typeof(IOptionsMonitorCache<OssuaryServerOptions>)) is IOptionsMonitorCache<OssuaryServerOptions> cache
            ? (sources, cache)
            : null;

    /// <summary>
    /// False only when every registered configuration of the options is one named for another name
    /// (what <c>AddOssuaryServer(..., name).Configure</c> registers); any other kind may configure this name.
    /// </summary>
    private static bool IsConfigured(IServiceProvider services, string name) =>
        services.GetService(typeof(IEnumerable<IConfigureOptions<OssuaryServerOptions>>)) is not IEnumerable<IConfigureOptions<OssuaryServerOptions>> configures
        || configures.Any(configure => configure is not ConfigureNamedOptions<OssuaryServerOptions> named || named.Name is null || named.Name == name);
}
