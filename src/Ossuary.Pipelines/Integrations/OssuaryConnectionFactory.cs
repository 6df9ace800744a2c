using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Ossuary.Pipelines.Configuration;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// An <see cref="IConnectionFactory"/> whose connections are Ossuary clients: code written against
/// <c>Microsoft.AspNetCore.Connections</c> (Bedrock-style clients, RPC stacks) gets a
/// <see cref="ConnectionContext"/> whose <see cref="ConnectionContext.Transport"/> is plaintext, with
/// an <see cref="IOssuaryConnectionFeature"/> in its features. Register it with
/// <c>services.AddOssuaryClient(...)</c>, or construct it with options.
/// Thread-safe: <see cref="ConnectAsync"/> from any number of threads at once, and <see cref="Dispose"/> while they run.
/// </summary>
public sealed class OssuaryConnectionFactory : IConnectionFactory, IDisposable
{
    private readonly ILoggerFactory? _loggerFactory;
    private readonly IMeterFactory? _meterFactory;
    private readonly OptionsFollower<OssuaryClientOptions>? _follower;
    private readonly CurrentPlan _current;

    // The identity key file of the options in force (read, or still to be read): see BuildKeepingIdentity.
    // Changed by the follower, one change at a time.
    private string? _keyFileInForce;
    private IDisposable? _running;

    // Orders a change's plan swap with Dispose: the follower does not wait for a change reading its key file
    // (one on a hung mount held up the factory's disposal for as long as the mount did not answer), so a
    // change may end after Dispose, and must then put nothing in force nor register its key file.
    private readonly Lock _lock = new();
    private bool _disposed;

    /// <summary>Connects with fixed options, validated and copied now.</summary>
    /// <param name="options">The client options.</param>
    /// <param name="loggerFactory">Where logs go when the options name no <see cref="OssuaryClientOptions.LoggerFactory"/>.</param>
    /// <param name="meterFactory">Creates the meter when the options name no <see cref="OssuaryClientOptions.MeterFactory"/>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The options are invalid; the message says what to fix.</exception>
    /// <exception cref="FormatException">The options' <see cref="OssuaryClientOptions.IdentityKeyFile"/> is malformed; the message names the file.</exception>
    /// <exception cref="IOException">The options' <see cref="OssuaryClientOptions.IdentityKeyFile"/> cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The options' <see cref="OssuaryClientOptions.IdentityKeyFile"/> may be read by other users (fix with <c>chmod 600</c>), is owned by another user (fix with <c>chown</c>; not checked on Windows), or cannot be opened.</exception>
    public OssuaryConnectionFactory(OssuaryClientOptions options, ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null)
    {
        _loggerFactory = loggerFactory;
        _meterFactory = meterFactory;
        _current = new CurrentPlan(Build(options));
    }

    /// <summary>
    /// Connects with the named options of <paramref name="monitor"/> (<c>AddOssuaryClient</c>'s), and follows
    /// their changes: each connection uses the options current when it starts. A change the options
    /// validator refused is reported and read again until it passes (<see cref="OptionsFollower{TOptions}"/>).
    /// </summary>
    internal OssuaryConnectionFactory(IOptionsMonitor<OssuaryClientOptions> monitor, (IEnumerable<IOptionsChangeTokenSource<OssuaryClientOptions>> Sources, IOptionsMonitorCache<OssuaryClientOptions> Cache)? changes, string name, ILoggerFactory? loggerFactory, IMeterFactory? meterFactory, FollowedKeyFiles? followed = null)
    {
        ArgumentNullException.ThrowIfNull(monitor);
        _loggerFactory = loggerFactory;
        _meterFactory = meterFactory;
        OssuaryClientOptions first = monitor.Get(name);
        _current = new CurrentPlan(Build(first));
        _keyFileInForce = KeyFile(first);
        _running = followed?.Run<OssuaryClientOptions>(name); // from now on a validation of these options is a reload's, which reads no file
        _follower = new OptionsFollower<OssuaryClientOptions>(monitor, changes, name, first,
            (options, again, superseded) => OnOptionsChanged(options, name, again, superseded), refused => OssuaryLog.OptionsReloadFailed(Logger(first), name, refused));
    }

    /// <summary>
    /// Connects to <paramref name="endpoint"/> (<see cref="IPEndPoint"/>, <see cref="DnsEndPoint"/> or
    /// <see cref="System.Net.Sockets.UnixDomainSocketEndPoint"/>) and runs the client handshake, as
    /// <see cref="OssuaryClient.ConnectAsync(EndPoint, OssuaryClientOptions, CancellationToken)"/> does.
    /// </summary>
    /// <exception cref="OssuaryException">The handshake failed or timed out; <see cref="OssuaryException.Reason"/> says why.</exception>
    /// <exception cref="System.Net.Sockets.SocketException">The endpoint could not be reached, its name did not resolve, or connecting timed out (<see cref="System.Net.Sockets.SocketError.TimedOut"/>).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="endpoint"/> is null.</exception>
    /// <exception cref="NotSupportedException"><paramref name="endpoint"/> is not an <see cref="IPEndPoint"/>, <see cref="DnsEndPoint"/> or <see cref="System.Net.Sockets.UnixDomainSocketEndPoint"/>.</exception>
    /// <exception cref="ObjectDisposedException">The factory has been disposed.</exception>
    public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        SharedPlan current = _current.Hold() ?? throw new ObjectDisposedException(nameof(OssuaryConnectionFactory));
        try
        {
            return await OssuaryClient.ConnectAsync(endpoint, current.Plan, current.Telemetry, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            current.Release(); // the handshake is over: this connection signs nothing again
        }
    }

    /// <summary>
    /// Stops following option changes and frees the identity read from <see cref="OssuaryClientOptions.IdentityKeyFile"/>
    /// once the handshakes under way are over (an <see cref="OssuaryClientOptions.Identity"/> stays the application's).
    /// Connections already made are not affected; new ones are refused.
    /// </summary>
    public void Dispose()
    {
        _follower?.Dispose(); // a change still reading its key file finds this disposed when it is done, and drops its plan
        lock (_lock)
        {
            _disposed = true;
            _running?.Dispose();
        }

        _current.Close();
    }

    /// <summary>
    /// Called by the follower, one value at a time: whether it was applied, or why not (the follower reports
    /// it and offers it again); <paramref name="again"/> when it is the value in force, offered again because
    /// its identity key file could not be read. <paramref name="superseded"/>, asked under the lock, says the follower
    /// gave up on this call (a read that hung, a newer value applied beside it): it then puts nothing in force.
    /// </summary>
    private OptionsApplied OnOptionsChanged(OssuaryClientOptions options, string name, bool again, Func<bool> superseded)
    {
        if (again)
        {
            return ReadIdentityAgain(options, name, superseded);
        }

        SharedPlan next;
        bool keptKey;
        try
        {
            next = BuildKeepingIdentity(options, name, out keptKey);
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            // Connections keep the previous options rather than failing until the change is fixed.
            return OptionsApplied.Refused(ex);
        }

        lock (_lock)
        {
            if (_disposed || superseded())
            {
                next.Release(); // nobody will take it
                return OptionsApplied.Taken;
            }

            _keyFileInForce = KeyFile(options);

            _current.Replace(next); // the previous options' key-file identity goes once their handshakes are over

            // As a server says so: an operator who fixed a refused change (event 24) sees when it took effect.
            // (Under the lock: Dispose does not free the plan in force before this is said.)
            OssuaryLog.OptionsReloaded(Logger(options), name, next.Plan, next.Plan.TrustedKeyCount);
            return keptKey ? OptionsApplied.TakenKeepingKey : OptionsApplied.Taken;
        }
    }

    /// <summary>
    /// The options in force (<paramref name="options"/>) name an identity key file that could not be read, and the
    /// key before it is presented meanwhile: read the file again, and present its key once it can be.
    /// </summary>
    private OptionsApplied ReadIdentityAgain(OssuaryClientOptions options, string name, Func<bool> superseded)
    {
        SharedPlan next;
        try
        {
            next = BuildReloaded(options);
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            return OptionsApplied.TakenKeepingKey; // said once already (event 27): still not readable
        }

        lock (_lock)
        {
            if (_disposed || superseded())
            {
                next.Release();
                return OptionsApplied.Taken;
            }

            _current.Replace(next);
            OssuaryLog.OptionsReloaded(Logger(options), name, next.Plan, next.Plan.TrustedKeyCount);
            return OptionsApplied.Taken;
        }
    }

    /// <summary>Fail-safe: a refused reload is logged from the options follower's timer, where a provider's throw would crash the process.</summary>
    private ILogger Logger(OssuaryClientOptions options) =>
        (options.LoggerFactory ?? _loggerFactory) is { } loggers ? new FailSafeLogger(loggers.CreateLogger(ConnectionTelemetry.ClientCategory)) : NullLogger.Instance;

    /// <summary>
    /// The plan for changed options. When the identity key file they name cannot be read (the one in force
    /// deleted, half-written or readable by others; a new one not yet copied into place) and the plan in
    /// force presents a key file's key, the plan presents that key and takes the rest of the change, said
    /// at Error, and <paramref name="keptKey"/> is set (the file is read again until it can be): refusing
    /// the whole change kept a server key removed from <see cref="OssuaryClientOptions.TrustedServerKeys"/>
    /// trusted while the file stayed unreadable.
    /// </summary>
    private SharedPlan BuildKeepingIdentity(OssuaryClientOptions options, string name, out bool keptKey)
    {
        keptKey = false;
        try
        {
            return BuildReloaded(options);
        }
        catch (Exception ex) when (ex is FormatException or IOException or UnauthorizedAccessException
            && options.Identity is null && options.IdentityKeyFile is { } path && _keyFileInForce is not null)
        {
            if (_current.Hold() is not { } current)
            {
                throw; // disposed meanwhile
            }

            try
            {
                if (current.Plan.Identity is not { } kept)
                {
                    throw;
                }

                HandshakePlan plan = HandshakePlan.ForClient(options, kept);
                SharedPlan next = SharedPlan.Sharing(plan, ConnectionTelemetry.For(plan, _loggerFactory, _meterFactory), current);
                OssuaryLog.IdentityKeyFileKept(Logger(options), path, name, kept.PublicKey, ex);
                keptKey = true;
                return next;
            }
            finally
            {
                current.Release();
            }
        }
    }

    /// <summary>The identity key file <paramref name="options"/> read their key from, if any.</summary>
    private static string? KeyFile(OssuaryClientOptions options) => options.Identity is null ? options.IdentityKeyFile : null;

    /// <summary>
    /// The plan for options a reload brings: their identity key file must be a regular one, checked by name
    /// before it is opened (<see cref="ReloadedKeyFile"/>) and opened without waiting for a writer, the file
    /// opened checked again (<see cref="OssuarySecretKeyFile.ReadRegular"/>). Opened blocking, a named pipe
    /// renamed over the name after its check waited for a writer, for ever if none came, and the
    /// configuration's reload thread with it.
    /// </summary>
    private SharedPlan BuildReloaded(OssuaryClientOptions options)
    {
        options.Validate(); // before the file is opened, as HandshakePlan.ForClient does
        OssuaryIdentity? read = null;
        if (KeyFile(options) is { } path)
        {
            ReloadedKeyFile.Require(path);
            read = OssuarySecretKeyFile.ReadRegular(path);
        }

        HandshakePlan plan;
        try
        {
            plan = HandshakePlan.ForClient(options, readFromFile: read);
        }
        catch
        {
            read?.Dispose();
            throw;
        }

        return new SharedPlan(plan, ConnectionTelemetry.For(plan, _loggerFactory, _meterFactory));
    }

    private SharedPlan Build(OssuaryClientOptions options)
    {
        HandshakePlan plan = HandshakePlan.ForClient(options);
        return new SharedPlan(plan, ConnectionTelemetry.For(plan, _loggerFactory, _meterFactory));
    }
}
