using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary><c>UseOssuary</c> for Kestrel's <c>ListenOptions</c> and any other <see cref="IConnectionBuilder"/>.</summary>
public static class OssuaryConnectionBuilderExtensions
{
    /// <summary>
    /// Secures every connection with Ossuary before the rest of the pipeline sees it: the next
    /// middleware gets a plaintext <see cref="ConnectionContext.Transport"/> and an
    /// <see cref="IOssuaryConnectionFeature"/>. The options are validated and copied now.
    /// </summary>
    /// <exception cref="InvalidOperationException">The options are invalid; the message says what to fix.</exception>
    public static TBuilder UseOssuary<TBuilder>(this TBuilder builder, OssuaryServerOptions options)
        where TBuilder : IConnectionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        var loggerFactory = builder.ApplicationServices?.GetService(typeof(ILoggerFactory)) as ILoggerFactory;
        var meterFactory = builder.ApplicationServices?.GetService(typeof(IMeterFactory)) as IMeterFactory;
        ILogger logger = loggerFactory?.CreateLogger("Ossuary.Pipelines.Server") ?? NullLogger.Instance;

        // Validated and snapshotted now, as Kestrel's UseHttps does, so bad options fail at start-up.
        HandshakePlan plan = HandshakePlan.ForServer(options, out OssuaryIdentity? generated);
        if (generated is not null)
        {
            OssuaryLog.GeneratedServerIdentity(logger, generated.PublicKey);
        }

        var metrics = OssuaryMetrics.Create(meterFactory);
        builder.Use(next => new OssuaryServerMiddleware(next, plan, logger, metrics).OnConnectionAsync);
        return builder;
    }

    /// <summary>Configures a fresh <see cref="OssuaryServerOptions"/> and secures every connection with it.</summary>
    /// <inheritdoc cref="UseOssuary{TBuilder}(TBuilder, OssuaryServerOptions)" path="/exception"/>
    public static TBuilder UseOssuary<TBuilder>(this TBuilder builder, Action<OssuaryServerOptions> configure)
        where TBuilder : IConnectionBuilder
    {
        ArgumentNullException.ThrowIfNull(configure);
        var options = new OssuaryServerOptions();
        configure(options);
        return builder.UseOssuary(options);
    }
}
