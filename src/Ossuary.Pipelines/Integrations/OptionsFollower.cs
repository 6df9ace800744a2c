using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// Hands an owner (a server's plans, a connection factory) each new value of its named options,
/// once: from <see cref="IOptionsMonitor{TOptions}.OnChange"/>, and from what the monitor cannot
/// say, that a change was refused. When
/// the changed options fail validation (a key file named before it was copied into place, a file not
/// yet readable), the monitor throws to whoever reloaded the configuration (a file source swallows
/// it) and never calls its listeners, so the server would go on with its old key in silence, and
/// copying the file in afterwards would change nothing (the monitor's cache keeps the validation
/// failure and throws it again on every read until the next change). This follows the same change tokens the
/// monitor follows, reads the options again once the monitor has taken the change (a read that finds
/// the options from before it, the monitor's listener perhaps not yet called, is made again every
/// <see cref="RetryInterval"/>, a few times), reports a refused change once, and reads again every <see cref="RetryInterval"/> until the options pass,
/// then hands them on as the monitor would have. Both ways may bring the same value: it is handed on once
/// it has been taken. A value the owner could not take (no validator refused it, as with options bound
/// without <c>AddOssuaryServer</c>, but its key file is not there yet) is reported once too, and offered
/// again every <see cref="RetryInterval"/>: once seen, it was never offered again, and the file copied
/// into place afterwards changed nothing until some other setting changed. A value the owner took but
/// for its identity key file (<see cref="OptionsApplied.KeyFilePending"/>) is offered again every
/// <see cref="RetryInterval"/> too, marked as such, until the owner has read the file.
/// </summary>
// TOptions carries IOptionsMonitor's own annotation: without it the trimmer warns (IL2091) in every
// trimmed or NativeAOT application that uses AddOssuaryServer or AddOssuaryClient, although
// Roslyn's trim analyzer does not see generic arguments in field and parameter types.
internal sealed class OptionsFollower<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions> : IDisposable
    where TOptions : class
{
    // The monitor's own listener runs in the same token callback as ours, often after it (last registered,
    // first called): reading at once would find the previous options still cached. Not a promise that it
    // has run by then (see _beforeChange).
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(100);

    // How many reads a change may find the value from before it, before that value counts as the monitor's answer.
    private const int BeforeChangeReads = 10;

    private readonly IOptionsMonitor<TOptions> _monitor;
    private readonly IOptionsMonitorCache<TOptions>? _cache;
    private readonly string _name;
    private readonly Func<TOptions, bool, OptionsApplied> _changed;
    private readonly Action<Exception> _refused;
    private readonly List<IDisposable> _subscriptions;
    private readonly Lock _lock = new();

    // Held while the owner is handed a value, so values go one at a time and in order; never taken under _lock.
    private readonly Lock _offering = new();
    private readonly ITimer _check;

    // Completed by Dispose: an announcement stops waiting for its value to be handed on.
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TOptions _taken;

    // The last value the monitor gave us (read, announced, or the first one).
    private TOptions _seen;

    // The last value the monitor gave us when its tokens last signalled a change, until a read or an
    // announcement shows the change taken. A read that returns it may have read the options from before
    // the change, the monitor's listener not yet called: taken for the monitor's answer, it was the value
    // in force, nothing was handed on nor read again, and a change the monitor then refused was never
    // reported nor read again once fixed. The listener runs after ours (every other reload: the tokens
    // call the two in turn), and after whatever else follows the same configuration, so a fixed wait for
    // it (Settle) is no promise on a loaded machine. Such a read is made again every RetryInterval, up to
    // BeforeChangeReads times: not for ever, since the monitor may as well have announced that very value
    // just before our listener ran.
    private TOptions? _beforeChange;
    private int _beforeChangeReads;

    // Values the monitor announced and changes its tokens signalled, counted: a read of the monitor begun
    // before one of them may return the value it replaced, which must not be handed on after it.
    private int _announced;
    private bool _keyFilePending;
    private bool _reported;
    private bool _disposed;

    /// <param name="monitor">The monitor whose options are followed.</param>
    /// <param name="changes">The change tokens the monitor follows (those of other names are ignored) and its cache,
    /// which keeps a validation failure until it is removed; without them only the monitor's own changes are followed.</param>
    /// <param name="name">Which of its options.</param>
    /// <param name="first">The value the owner started with.</param>
    /// <param name="changed">Given each new value, one at a time, until it takes one, and told whether the value is the one
    /// it took but for its identity key file, offered again: says whether it took it, in part, or why it could not.</param>
    /// <param name="refused">Told once per change whose options fail validation, cannot even be made (a value the binder cannot convert), or were not taken.</param>
    public OptionsFollower(IOptionsMonitor<TOptions> monitor, (IEnumerable<IOptionsChangeTokenSource<TOptions>> Sources, IOptionsMonitorCache<TOptions> Cache)? changes, string name, TOptions first, Func<TOptions, bool, OptionsApplied> changed, Action<Exception> refused)
    {
        _monitor = monitor;
        _cache = changes?.Cache;
        _name = name;
        _taken = first;
        _seen = first;
        _changed = changed;
        _refused = refused;
        // The system clock, not the options' TimeProvider: that one is the handshake timeouts' clock,
        // and a host or test that gives a fake one (never advanced) never had a refused change reported
        // nor read again, though a configuration reload is real time.
        _check = TimeProvider.System.CreateTimer(static state => ((OptionsFollower<TOptions>)state!).Check(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _subscriptions = [.. (changes?.Sources ?? [])
            .Where(source => (source.Name ?? Options.DefaultName) == name)
            .Select(source => ChangeToken.OnChange(source.GetChangeToken, OnChange))];
        if (monitor.OnChange((options, changedName) =>
            {
                if ((changedName ?? Options.DefaultName) == name)
                {
                    Announce(options);
                }
            }) is { } subscription)
        {
            _subscriptions.Add(subscription);
        }
    }

    /// <summary>How often options that failed validation are read again.</summary>
    internal static TimeSpan RetryInterval { get; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Stops following. A value being handed on is not waited for (it may be reading a key file that never
    /// answers): the owner must let a call that ends after its own disposal change nothing.
    /// </summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
        }

        _stopped.TrySetResult();
        foreach (IDisposable subscription in _subscriptions)
        {
            subscription.Dispose();
        }

        _check.Dispose();
    }

    /// <summary>
    /// Hands on a value the monitor announces, and waits for it as the monitor's listeners are waited for
    /// (a reload returns once its options are in force), but only until this is disposed. The owner
    /// reads key files, and the monitor's disposal waits for its listener to return: run on the monitor's
    /// thread, a read of a file on a hung mount held up the host's stop (its services disposed) for as long
    /// as the mount did not answer. The value is handed on from a pool thread, which finds this disposed
    /// whenever the read ends.
    /// </summary>
    private void Announce(TOptions options)
    {
        Task<bool> offered = Task.Run(() => Offer(options));
        Task.WaitAny(offered, _stopped.Task);
        if (offered.IsCompleted)
        {
            offered.GetAwaiter().GetResult(); // what it threw, as if it had run here
        }
    }

    private void OnChange()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _reported = false; // a new change: its refusal is news
            _announced++;
            _beforeChange = _seen;
            _beforeChangeReads = BeforeChangeReads;
            _check.Change(Settle, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>
    /// Reads the options and offers them. The read is not under the lock (the monitor may build and validate
    /// them, key files read): a newer value announced meanwhile was taken first, and the value read, older,
    /// was then handed on and taken after it, putting back options the configuration no longer says
    /// (a client key it had just removed, admitted again). Such a read is read again.
    /// </summary>
    private void Check()
    {
        while (true)
        {
            int announced = Volatile.Read(ref _announced);
            TOptions options;
            try
            {
                options = _monitor.Get(_name);
            }
            catch (Exception ex)
            {
                // Not only a validation failure: a value the binder cannot convert ("5 seconds" for a
                // TimeSpan) makes the options factory throw InvalidOperationException, and anything
                // escaping this timer callback would end the process.
                // Read afresh next time: the cache would throw this failure again, files fixed or not.
                _cache?.TryRemove(_name);
                bool report;
                lock (_lock)
                {
                    if (_disposed)
                    {
                        return;
                    }

                    if (announced != _announced)
                    {
                        continue; // the failure of a value already replaced: read the newer one
                    }

                    _beforeChange = null; // read afresh, so after the change: the monitor holds nothing from before it
                    report = RetryLater();
                }

                if (report)
                {
                    _refused(ex);
                }

                return;
            }

            if (Offer(options, announced))
            {
                return;
            }
        }
    }

    /// <summary>
    /// Hands <paramref name="options"/> on unless taken already; <paramref name="readAt"/> is the count of
    /// announcements when a read of the monitor began, null for a value the monitor announces. False when
    /// a newer value was announced since the read began: read again. The owner is called under
    /// <see cref="_offering"/>, not <see cref="_lock"/>: it reads key files, and one on a hung mount held
    /// the lock that <see cref="Dispose"/> takes, so the host's stop waited for it, for ever.
    /// </summary>
    private bool Offer(TOptions options, int? readAt = null)
    {
        lock (_offering)
        {
            bool again;
            lock (_lock)
            {
                if (readAt is null)
                {
                    _announced++;
                    _seen = options;
                    _beforeChange = null; // the monitor has taken the change
                }
                else if (readAt != _announced && !_disposed)
                {
                    return false;
                }
                else if (!_disposed && _beforeChange is not null && ReferenceEquals(options, _beforeChange))
                {
                    // Perhaps read before the monitor took the change: read again. By then it has announced its
                    // value, or, refusing the change, given up the one it held, and that read builds the options
                    // afresh and is refused as well. This read is handled as any other meanwhile (a value in force
                    // whose key file is pending is offered again).
                    if (--_beforeChangeReads == 0)
                    {
                        _beforeChange = null;
                    }

                    _check.Change(RetryInterval, Timeout.InfiniteTimeSpan);
                }
                else
                {
                    _seen = options;
                    _beforeChange = null;
                }

                again = ReferenceEquals(options, _taken);
                if (_disposed || (again && !_keyFilePending))
                {
                    return true;
                }
            }

            // A value announced meanwhile waits for _offering, and is handed on after this one.
            OptionsApplied applied = _changed(options, again);
            Exception? failed;
            lock (_lock)
            {
                if (applied.Failure is null)
                {
                    _taken = options;
                    _keyFilePending = applied.KeyFilePending;
                    if (_keyFilePending && !_disposed)
                    {
                        _check.Change(RetryInterval, Timeout.InfiniteTimeSpan); // its key file may be there by then
                    }

                    return true;
                }

                if (_disposed)
                {
                    return true; // nothing to report or retry for an owner gone meanwhile
                }

                failed = RetryLater() ? applied.Failure : null;
            }

            if (failed is not null)
            {
                _refused(failed);
            }

            return true;
        }
    }

    /// <summary>Reads the options again after <see cref="RetryInterval"/>; true if this change's failure is news. Call under the lock.</summary>
    private bool RetryLater()
    {
        bool report = !_reported;
        _reported = true;
        _check.Change(RetryInterval, Timeout.InfiniteTimeSpan);
        return report;
    }
}
