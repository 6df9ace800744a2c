using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Ossuary.Pipelines.Configuration;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// The plan a listener's next connection uses. It is rebuilt, and swapped in whole, when the
/// options change (<see cref="IOptionsMonitor{TOptions}"/>) or the authorized-keys file changes on
/// disk, so a key removed from either is refused from then on: a handshake already under way keeps the plan
/// it took for its identity, but its admission is decided with the allow-list in force (<see cref="HandshakePlan.InForce"/>). Invalid changes are
/// logged at Error and leave the previous plan in force: a half-edited file or setting must
/// neither stop the server nor widen whom it admits; a change the options validator refused (which
/// the monitor does not pass on), or that this could not apply, is reported once, and read again every
/// second until it passes (<see cref="OptionsFollower{TOptions}"/>); but an identity key file that cannot
/// be read (the one in force, or a new one not yet in place) keeps the key in force and lets the rest of the
/// change through, and is read again every second until it can be (see <see cref="BuildKeepingIdentity"/>). A replaced plan's key-file identity is freed
/// once the handshakes that took it are over; the plan in force's, once the host has stopped and
/// its handshakes are over; an identity generated for an unauthenticated server (kept across
/// reloads), likewise once the host has stopped and the last handshake presenting it is over. It is registered
/// as running with <see cref="FollowedKeyFiles"/>, so that the options validator leaves a reload's files to it.
/// </summary>
internal sealed class ServerPlanSource : IDisposable
{
    private readonly Lock _lock = new();
    private readonly string _name;
    private readonly ILogger _logger;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly IMeterFactory? _meterFactory;
    private readonly OptionsFollower<OssuaryServerOptions>? _follower;
    private IDisposable? _running;
    private OssuaryServerOptions _options;
    private IReadOnlyList<OssuaryPublicKey> _fileKeys = [];
    private AuthorizedKeysFileWatcher? _watcher;
    private bool _disposed;

    // The authorized-keys file a reload names anew, read outside the lock, and what its watcher read since
    // (a change made while the reload still read the identity key file), which the reload's plan takes.
    private string? _pendingFile;
    private IReadOnlyList<OssuaryPublicKey>? _pendingKeys;
    private OssuaryIdentity? _generated;

    // The plan that generated it, held by this source while it runs so that every later plan can present the same key.
    private SharedPlan? _generatedOwner;
    private readonly CurrentPlan _current;

    // What every plan of this source asks for the allow-list that decides admission (HandshakePlan.InForce):
    // a handshake under way when a key is revoked must not be admitted with the list it started with.
    private readonly Func<HandshakePlan> _inForce;

    /// <exception cref="InvalidOperationException">The options are invalid.</exception>
    /// <exception cref="FormatException">A key file is malformed.</exception>
    /// <exception cref="IOException">A key file cannot be read.</exception>
    public ServerPlanSource(OssuaryServerOptions options, IOptionsMonitor<OssuaryServerOptions>? monitor, (IEnumerable<IOptionsChangeTokenSource<OssuaryServerOptions>> Sources, IOptionsMonitorCache<OssuaryServerOptions> Cache)? changes, string name, ILoggerFactory? loggerFactory, IMeterFactory? meterFactory, FollowedKeyFiles? followed = null)
    {
        // The caller's object may change after this (a listener's options reused for the next one):
        // a file change is applied with the options as they were given.
        OssuaryServerOptions given = options;
        options = options.Copy();
        _inForce = PlanInForce;
        _name = name;
        _options = options;
        _loggerFactory = options.LoggerFactory ?? loggerFactory;
        _meterFactory = options.MeterFactory ?? meterFactory;
        // Fail-safe as the connections' loggers are: these lines are written from the file watcher's
        // thread and timers, where a provider's throw crashed the process, and before a deleted
        // file's keys were dropped, so a failing log sink kept them admitted.
        _logger = _loggerFactory is null ? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance
            : new FailSafeLogger(_loggerFactory.CreateLogger(ConnectionTelemetry.ServerCategory));
        options.Validate(); // before its files are opened: a path no file can have is named as the setting it is
        _fileKeys = options.AuthorizedKeysFile is { } file ? OssuaryAuthorizedKeys.Load(file) : []; // a start-up that fails says why
        lock (_lock) // what the watcher sees waits for the first plan
        {
            AuthorizedKeysFileWatcher? watcher = StartWatching(options.AuthorizedKeysFile);
            try
            {
                _fileKeys = ReadAgain(options.AuthorizedKeysFile, _fileKeys);
                _current = new CurrentPlan(Build(options, _fileKeys));
            }
            catch
            {
                watcher?.Dispose();
                throw;
            }

            Follow(watcher);
            _running = followed?.Run<OssuaryServerOptions>(name); // from now on a validation of these options is a reload's
        }

        if (monitor is not null)
        {
            _follower = new OptionsFollower<OssuaryServerOptions>(monitor, changes, name, given,
                OnOptionsChanged, refused => OssuaryLog.OptionsReloadFailed(_logger, _name, refused));
        }
    }

    /// <summary>The plan in force, for its allow-list only (see <see cref="CurrentPlan.InForce"/>).</summary>
    private HandshakePlan PlanInForce() => _current.InForce;

    /// <summary>The plan in force, held for one handshake: release it once the handshake is over. Null once disposed.</summary>
    public SharedPlan? Hold() => _current.Hold();

    /// <summary>The connections of this server in their handshake now, whatever plan each took.</summary>
    public PendingHandshakes Pending { get; } = new();

    public void Dispose()
    {
        _follower?.Dispose(); // does not wait for a reload reading its files: that one finds this disposed, and drops what it made
        lock (_lock)
        {
            _disposed = true;
            _watcher?.Dispose();
            _watcher = null;
            _running?.Dispose();
            _running = null;
        }

        _current.Close();
        lock (_lock)
        {
            // The generated key goes once the last plan presenting it is let go (a handshake may still hold one).
            _generatedOwner?.Release();
            _generatedOwner = null;
        }
    }

    /// <summary>
    /// Called by the follower, one value at a time: whether it was applied, or why not (the follower reports
    /// it and offers it again); <paramref name="again"/> when it is the value in force, offered again because
    /// its identity key file could not be read. Its files are read before the lock is taken, which then only
    /// swaps the plan: a key file on a hung mount (NFS, FUSE) read under the lock held up a revocation from
    /// the authorized-keys file (<see cref="OnFileChanged"/> waits for the lock) and the host's stop, for as
    /// long as the mount did not answer. <paramref name="superseded"/>, asked under the lock, says the follower gave
    /// up on this call (a read that hung, a newer value applied beside it): it then puts nothing in force.
    /// </summary>
    private OptionsApplied OnOptionsChanged(OssuaryServerOptions options, bool again, Func<bool> superseded)
    {
        options = options.Copy();
        if (again)
        {
            return ReadIdentityAgain(superseded);
        }

        OssuaryServerOptions inForce;
        lock (_lock)
        {
            if (_disposed)
            {
                return OptionsApplied.Taken; // stopped: nothing left to apply it to, nor to offer it again
            }

            inForce = _options;
        }

        bool newFile = options.AuthorizedKeysFile != inForce.AuthorizedKeysFile;
        AuthorizedKeysFileWatcher? watcher = null;
        (OssuaryIdentity? Identity, Exception? Failure) read = default;
        try
        {
            options.Validate(); // as at start-up: before a new file is opened
            IReadOnlyList<OssuaryPublicKey> newKeys = [];
            if (newFile && options.AuthorizedKeysFile is { } file)
            {
                newKeys = OssuaryAuthorizedKeys.Load(file);
                lock (_lock)
                {
                    _pendingFile = file; // what its watcher reads before the plan is swapped is kept for it
                    _pendingKeys = null;
                }

                watcher = StartWatching(file);
                newKeys = ReadAgain(file, newKeys);
            }

            read = ReadIdentity(options);
            lock (_lock)
            {
                if (_disposed || superseded())
                {
                    ForgetPendingFile(options.AuthorizedKeysFile, newFile);
                    watcher?.Dispose();
                    read.Identity?.Dispose();
                    return OptionsApplied.Taken;
                }

                // The keys as they are now: the watcher's, read since, or those in force, which a
                // revocation may have changed while the files were read.
                IReadOnlyList<OssuaryPublicKey> fileKeys = !newFile ? _fileKeys : _pendingKeys ?? newKeys;
                SharedPlan next = BuildKeepingIdentity(options, fileKeys, read, out bool keptKey);
                _pendingFile = null;
                _pendingKeys = null;
                _current.Replace(next);
                if (newFile)
                {
                    Follow(watcher);
                }

                _options = options;
                _fileKeys = fileKeys;
                OssuaryLog.OptionsReloaded(_logger, _name, next.Plan, next.Plan.AdmittedKeyCount);
                return keptKey ? OptionsApplied.TakenKeepingKey : OptionsApplied.Taken;
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            lock (_lock)
            {
                ForgetPendingFile(options.AuthorizedKeysFile, newFile);
            }

            watcher?.Dispose(); // its late events find the options naming another file, and are ignored
            return OptionsApplied.Refused(ex);
        }
    }

    /// <summary>
    /// Stops keeping what the watcher of <paramref name="file"/> reads for a reload that did not put it in force;
    /// left alone when a later reload, running beside one that hung, names another file. Call under the lock.
    /// </summary>
    private void ForgetPendingFile(string? file, bool newFile)
    {
        if (newFile && _pendingFile == file)
        {
            _pendingFile = null;
            _pendingKeys = null;
        }
    }

    /// <summary>
    /// The options in force name an identity key file that could not be read, and the key before it is
    /// presented meanwhile: read the file again (before the lock is taken), and present its key once it can be.
    /// </summary>
    private OptionsApplied ReadIdentityAgain(Func<bool> superseded)
    {
        OssuaryServerOptions inForce;
        lock (_lock)
        {
            if (_disposed)
            {
                return OptionsApplied.Taken;
            }

            inForce = _options;
        }

        (OssuaryIdentity? identity, Exception? failure) = ReadIdentity(inForce);
        if (failure is not null)
        {
            return OptionsApplied.TakenKeepingKey; // said once already (event 27): still not readable
        }

        lock (_lock)
        {
            if (_disposed || superseded())
            {
                identity?.Dispose();
                return OptionsApplied.Taken;
            }

            SharedPlan next;
            try
            {
                next = Build(_options, _fileKeys, identity);
            }
            catch (Exception ex) when (ex is InvalidOperationException or FormatException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                return OptionsApplied.TakenKeepingKey;
            }

            _current.Replace(next);
            OssuaryLog.OptionsReloaded(_logger, _name, next.Plan, next.Plan.AdmittedKeyCount);
            return OptionsApplied.Taken;
        }
    }

    /// <summary>
    /// The identity key file of <paramref name="options"/> read, when they name one and no identity: the key,
    /// or why it could not be read. Call outside the lock. On a reload the file must be a regular one
    /// (<see cref="ReloadedKeyFile"/>): a pipe's open waits for a writer that may never come.
    /// </summary>
    private static (OssuaryIdentity? Identity, Exception? Failure) ReadIdentity(OssuaryServerOptions options)
    {
        if (options.Identity is not null || options.IdentityKeyFile is not { } path)
        {
            return (null, null);
        }

        try
        {
            ReloadedKeyFile.Require(path);
            return (OssuarySecretKeyFile.ReadRegular(path), null); // the file opened must be regular too: the name may be swapped meanwhile
        }
        catch (Exception ex) when (ex is FormatException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            return (null, ex);
        }
    }

    private void OnFileChanged(string path, IReadOnlyList<OssuaryPublicKey> keys)
    {
        lock (_lock)
        {
            if (path == _pendingFile && _options.AuthorizedKeysFile != path && !_disposed)
            {
                _pendingKeys = keys; // a reload naming this file is under way: its plan takes these
                return;
            }

            if (_options.AuthorizedKeysFile != path || _watcher is null)
            {
                return; // a late event from a file the options no longer name, or from a source disposed (or never started)
            }

            // The plan in force with the new keys, its identity as it is: rebuilt from the options, it
            // read the identity key file again, and a key file gone or unreadable meanwhile kept a
            // revoked client admitted until the authorized-keys file changed once more.
            if (_current.Hold() is not { } current)
            {
                return; // disposed meanwhile
            }

            try
            {
                _current.Replace(current.WithAdmittedClients(_options.AuthorizedClientKeys, keys));
            }
            finally
            {
                current.Release();
            }

            _fileKeys = keys;
            OssuaryLog.AuthorizedKeysReloaded(_logger, path, keys.Count);
        }
    }

    /// <summary>
    /// Watches <paramref name="path"/> before its keys are read for a plan: a change made while the plan
    /// is built then raises an event (handled once the caller lets go of the lock) rather than going
    /// unseen until the next one, which kept a key removed in that moment admitted.
    /// </summary>
    private AuthorizedKeysFileWatcher? StartWatching(string? path) =>
        path is null ? null : new AuthorizedKeysFileWatcher(path, OnFileChanged, _logger);

    /// <summary>The file's keys as they are now that it is watched: a change since <paramref name="read"/> was read is not missed.</summary>
    private static IReadOnlyList<OssuaryPublicKey> ReadAgain(string? path, IReadOnlyList<OssuaryPublicKey> read) =>
        path is null ? read : OssuaryAuthorizedKeys.Load(path);

    /// <summary>Makes <paramref name="watcher"/> the one in force, in place of the previous.</summary>
    private void Follow(AuthorizedKeysFileWatcher? watcher)
    {
        _watcher?.Dispose();
        _watcher = watcher;
    }

    /// <summary>
    /// The plan for changed options, given their identity key file as <paramref name="read"/> (the key, or why it
    /// could not be read). When it could not (the one in
    /// force deleted, half-written or its permissions changed; a new one not yet copied into place) and
    /// the plan in force presents a key file's key, the plan presents that key and takes the rest of the
    /// change, said at Error, and <paramref name="keptKey"/> is set (the file is read again until it can
    /// be): refusing the whole change kept a client key removed from configuration admitted for as long
    /// as the file stayed unreadable, and a new file not yet in place held up whatever the same edit revoked.
    /// A server that presents no key file's key (its first, at start-up) must still read it. Call under the lock.
    /// </summary>
    private SharedPlan BuildKeepingIdentity(OssuaryServerOptions options, IReadOnlyList<OssuaryPublicKey> fileKeys, (OssuaryIdentity? Identity, Exception? Failure) read, out bool keptKey)
    {
        keptKey = false;
        if (read.Failure is not { } ex)
        {
            return Build(options, fileKeys, read.Identity);
        }

        if (ex is FormatException or IOException or UnauthorizedAccessException
            && options.Identity is null && options.IdentityKeyFile is { } path
            && _options.Identity is null && _options.IdentityKeyFile is not null
            && _current.Hold() is { } current) // null once disposed
        {
            try
            {
                if (current.Plan.Identity is { } kept)
                {
                    HandshakePlan plan = HandshakePlan.ForServer(options, fileKeys, out _, _generated, kept);
                    plan.InForce = _inForce;
                    SharedPlan next = SharedPlan.Sharing(plan, ConnectionTelemetry.For(plan, _loggerFactory, _meterFactory), current);
                    OssuaryLog.IdentityKeyFileKept(_logger, path, _name, kept.PublicKey, ex);
                    keptKey = true;
                    return next;
                }
            }
            finally
            {
                current.Release();
            }
        }

        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(ex); // the read's own failure, with its stack
        return null!; // not reached
    }

    /// <summary>The plan for <paramref name="options"/>; <paramref name="read"/>, their identity key file's key read already, is the plan's (freed here if it cannot be made).</summary>
    private SharedPlan Build(OssuaryServerOptions options, IReadOnlyList<OssuaryPublicKey> fileKeys, OssuaryIdentity? read = null)
    {
        HandshakePlan plan;
        OssuaryIdentity? generated;
        try
        {
            plan = HandshakePlan.ForServer(options, fileKeys, out generated, _generated, readFromFile: read);
            plan.InForce = _inForce;
        }
        catch
        {
            read?.Dispose();
            throw;
        }

        ConnectionTelemetry telemetry = ConnectionTelemetry.For(plan, _loggerFactory, _meterFactory);
        if (generated is not null)
        {
            // Made once, and freed once the server has stopped and its last handshake is over, not left to the finalizer.
            _generated = generated;
            OssuaryLog.GeneratedServerIdentity(_logger, generated.PublicKey);
            var owner = new SharedPlan(plan, telemetry, generated);
            owner.TryHold(); // this source's own hold, let go on disposal
            _generatedOwner = owner;
            return owner;
        }

        return _generatedOwner is { } generatedOwner && plan.Presents(_generated)
            ? SharedPlan.Sharing(plan, telemetry, generatedOwner)
            : new SharedPlan(plan, telemetry);
    }
}
