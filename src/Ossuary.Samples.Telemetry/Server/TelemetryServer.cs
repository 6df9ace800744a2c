using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Integrations;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>
/// Kestrel with <c>UseOssuary</c> (authenticated: only listed devices get through) in front of
/// <see cref="TelemetryConnectionHandler"/>, which queues readings for the <see cref="StoreWriter"/>.
/// No HTTP: the listener speaks Ossuary, then readings.
/// </summary>
public sealed partial class TelemetryServer : IAsyncDisposable
{
    /// <summary>Bytes Kestrel reads ahead of the handler per connection before it stops reading the socket.</summary>
    public const int MaxReadBufferSize = 64 * 1024;

    private readonly WebApplication _app;
    private readonly IReadingStore _store;
    private readonly bool _ownsStore;

    private TelemetryServer(WebApplication app, IPEndPoint endPoint, IPEndPoint? metrics, ReadingQueue queue, IReadingStore store, bool ownsStore, StoreWriter writer)
    {
        _app = app;
        MetricsEndPoint = metrics;
        Queue = queue;
        EndPoint = endPoint;
        _store = store;
        _ownsStore = ownsStore;
        Registry = app.Services.GetRequiredService<TelemetryRegistry>();
        Writer = writer;

        // A failed store closes the queue for good: a server that went on accepting devices only to
        // end their connections would never recover. It stops instead, and DisposeAsync throws the
        // store's failure, so that `server` exits 1 and a supervisor restarts it (and alerts).
        _ = writer.Completion.ContinueWith(_ => app.Lifetime.StopApplication(), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    /// <summary>The queue between the connections and the store.</summary>
    public ReadingQueue Queue { get; }

    /// <summary>Where readings go: the SQLite store, the JetStream publisher, or the store given in the options.</summary>
    public IReadingStore Store => _store;

    /// <summary>Writes queued readings to the store; <see cref="StoreWriter.Persisted"/> counts them.</summary>
    public StoreWriter Writer { get; }

    /// <summary>Where the server listens (the real port when 0 was asked for).</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>Where <c>/metrics</c> is served over HTTP; null without <see cref="TelemetryServerOptions.MetricsPort"/>.</summary>
    public IPEndPoint? MetricsEndPoint { get; }

    /// <summary>The counts the connection handler keeps (readable after the server has stopped).</summary>
    public TelemetryRegistry Registry { get; }

    /// <summary>Cancelled when the host is asked to stop (Ctrl+C, SIGTERM), or stops itself because the store failed.</summary>
    public CancellationToken Stopping => _app.Lifetime.ApplicationStopping;

    /// <summary>Starts listening.</summary>
    /// <exception cref="InvalidOperationException">The Ossuary options are invalid (say, no authorized devices).</exception>
    /// <exception cref="IOException">The address is in use.</exception>
    /// <exception cref="Microsoft.Data.Sqlite.SqliteException">The database file cannot be opened.</exception>
    public static async Task<TelemetryServer> StartAsync(TelemetryServerOptions options, TelemetryRegistry? registry = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.QueueCapacity, 1, nameof(options.QueueCapacity));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BatchSize, 1, nameof(options.BatchSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConnections, 1, nameof(options.MaxConnections));
        // Not the current directory, the default: the host watches its content root for
        // appsettings.json with one inotify watch per subdirectory, and a service started from / or
        // a home directory would watch the whole tree (and can run out of watches).
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.SetMinimumLevel(options.LogLevel);

        // The publisher's Information lines end a Warning or an Error it logged (NATS back after 1713,
        // room in a full stream after 1715): shown at Warning too, or the operator never reads that the
        // trouble is over.
        builder.Logging.AddFilter(typeof(JetStream.JetStreamPublisher).FullName, (LogLevel)Math.Min((int)options.LogLevel, (int)LogLevel.Information));

        if (options.ShutdownTimeout is TimeSpan shutdownTimeout)
        {
            builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = shutdownTimeout);
        }

        if (options.LoggerProvider is { } provider)
        {
            builder.Logging.AddProvider(provider);
        }

        if (options.MetricsPort is int metricsPort)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThan(metricsPort, 65535, nameof(options.MetricsPort));
            ArgumentOutOfRangeException.ThrowIfNegative(metricsPort, nameof(options.MetricsPort));
            builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
                .AddMeter(TelemetryMetrics.MeterName, "Ossuary.Pipelines")
                .AddPrometheusExporter());
        }

        registry ??= new TelemetryRegistry();
        builder.Services.AddSingleton(registry);
        var queue = new ReadingQueue(options.QueueCapacity);
        builder.Services.AddSingleton(queue);
        builder.Services.AddSingleton(TimeProvider.System);
        var admitted = options.AuthorizedDevices.ToHashSet();
        if (admitted.Count == 0)
        {
            throw new InvalidOperationException("No authorized devices: an authenticated server would admit nobody.");
        }

        // The handshake refuses both, so such a line (a placeholder, say) admits nobody while it looks like a device.
        if (admitted.FirstOrDefault(key => key.IsUnprovable) is { } unprovable)
        {
            throw new InvalidOperationException(
                $"The authorized devices hold {unprovable}, {(unprovable.IsAnonymous ? "the key an anonymous client sends" : "all zeros")}: no device can prove it. Remove it, or put the device's own public key there.");
        }

        // A device that outpaces the store waits with its bytes in this connection's buffers: Kestrel's
        // transport pipe (1 MiB by default, 64 KiB here) and the Ossuary adapter's (4 records). Per
        // connection that bounds the server's memory to ~130 KiB; the rest waits in TCP, on the device.
        builder.WebHost.UseSockets(sockets => sockets.MaxReadBufferSize = MaxReadBufferSize);
        ILogger? refusals = null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // Every socket costs a descriptor and memory, and every handshake CPU, before the allow-list
            // can refuse anyone: past the limit Kestrel closes a connection as it accepts it (and logs
            // it at Warning). Kestrel counts per endpoint, so a full device port still lets /metrics be scraped.
            kestrel.Limits.MaxConcurrentConnections = options.MaxConnections;
        });
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(options.Address, options.Port, listen =>
        {
            listen.UseOssuary(ossuary =>
            {
                ossuary.Identity = options.Identity;

                // The allow-list as a callback, so that a refused device's key is counted and shown:
                // an operator needs it to admit a new device or to spot a stray one.
                ossuary.AuthorizeClient = (device, _, _) =>
                {
                    bool known = admitted.Contains(device);
                    if (!known)
                    {
                        // Logged once per key at Warning (a new device to admit, or a stray one), then
                        // at Debug: a device retrying every second must not flood the log.
                        if (registry.Refuse(device) == 1)
                        {
                            LogRefused(refusals!, device);
                        }
                        else
                        {
                            LogRefusedAgain(refusals!, device);
                        }
                    }

                    return ValueTask.FromResult(known);
                };
            });
            listen.UseConnectionHandler<TelemetryConnectionHandler>();
        }));
        if (options.MetricsPort is int port)
        {
            // Plain HTTP on its own port: the device port speaks only Ossuary.
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(options.Address, port));
        }

        WebApplication app = builder.Build();
        refusals = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<TelemetryServer>();
        IReadingStore store;
        try
        {
            store = options.Store ?? (options.JetStream is { } jetStream
                ? await JetStream.JetStreamPublisher.ConnectAsync(jetStream, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<JetStream.JetStreamPublisher>())
                : SqliteReadingStore.Open(options.DatabasePath, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<SqliteReadingStore>()));
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        if (options.MetricsPort is not null)
        {
            app.UseOpenTelemetryPrometheusScrapingEndpoint();
        }
        var writer = new StoreWriter(queue, store, options.BatchSize, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<StoreWriter>());
        try
        {
            await app.StartAsync();
        }
        catch
        {
            // Kestrel runs the listen callback, and so UseOssuary's validation, while starting.
            await app.DisposeAsync();
            await StopWriterAsync(queue, writer, store, ownsStore: options.Store is null);
            throw;
        }

        // Kestrel binds, and lists, its endpoints in the order they were configured: devices first.
        List<int> ports = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Select(a => new Uri(a).Port).ToList();
        IPEndPoint? metricsEndPoint = options.MetricsPort is null ? null : new IPEndPoint(options.Address, ports[1]);
        _ = new TelemetryMetrics(app.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), registry, queue, writer);
        return new TelemetryServer(app, new IPEndPoint(options.Address, ports[0]), metricsEndPoint, queue, store, options.Store is null, writer);
    }

    /// <summary>
    /// Stops listening, ends open connections (each device gets a Disconnect), then stores every
    /// reading still queued before it returns.
    /// </summary>
    /// <exception cref="InvalidOperationException">The store failed; readings received since its last successful batch were not stored.</exception>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        await StopWriterAsync(Queue, Writer, _store, _ownsStore);
    }

    private static async Task StopWriterAsync(ReadingQueue queue, StoreWriter writer, IReadingStore store, bool ownsStore)
    {
        // Once every handler has ended (Kestrel may have stopped waiting for them), nothing enqueues
        // any more: the writer drains the rest and stops. A store failure completes the queue itself,
        // which ends the handlers still waiting for room.
        try
        {
            await queue.CompleteWhenProducersEndAsync();
            await writer.Completion;
        }
        finally
        {
            if (ownsStore)
            {
                await store.DisposeAsync();
            }
        }
    }

    [LoggerMessage(EventId = 1720, Level = LogLevel.Warning, Message = "Refused device {Device}: its key is not in the authorized keys (add it to admit the device).")]
    private static partial void LogRefused(ILogger logger, OssuaryPublicKey device);

    [LoggerMessage(EventId = 1721, Level = LogLevel.Debug, Message = "Refused device {Device} again.")]
    private static partial void LogRefusedAgain(ILogger logger, OssuaryPublicKey device);
}
