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
/// Values are handed on from a pool thread, one at a time, never from the monitor's listener: the owner
/// reads key files, and one that never answers (a named pipe nobody writes, a hung network mount) held
/// the configuration's change callback, and every later change of any options with it, and each change
/// then held one more thread. An owner that has not returned after <see cref="HungAfter"/> is reported
/// (Error), and the newest value is handed on beside it, on one more thread at most (<see cref="MaxAbandoned"/>):
/// the owner must let a call that the follower gave up on (its <c>superseded</c> true) change nothing.
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
    private readonly Func<TOptions, bool, Func<bool>, OptionsApplied> _changed;
    private readonly Action<Exception> _refused;
    private readonly List<IDisposable> _subscriptions;
    private readonly Lock _lock = new();

    private readonly ITimer _check;

    // Fires HungAfter after the owner was handed a value, to tell whether it has returned.
    private readonly ITimer _hung;
    private TOptions _taken;

    // The next value to hand on, newest only (a read's with the count of announcements when it began, null for
    // an announced one), and the hand-over running now, if any: one at a time, so values go in order.
    private Queued? _queued;

    // Completed by Dispose: an announcement stops waiting for its value to be handed on.
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Offering? _running;

    // Hand-overs given up on while the owner still had not returned (see MaxAbandoned).
    private int _abandoned;

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
    /// it took but for its identity key file, offered again: says whether it took it, in part, or why it could not.
    /// Its third argument says, when asked under the lock that puts a value in force, whether the follower has given up on
    /// this call (it did not return within <see cref="HungAfter"/>, and a newer value is handed on beside it): such a call must
    /// put nothing in force, or it would go in after the newer value.</param>
    /// <param name="refused">Told once per change whose options fail validation, cannot even be made (a value the binder cannot convert), or were not taken;
    /// and once per value the owner has not returned from after <see cref="HungAfter"/>.</param>
    public OptionsFollower(IOptionsMonitor<TOptions> monitor, (IEnumerable<IOptionsChangeTokenSource<TOptions>> Sources, IOptionsMonitorCache<TOptions> Cache)? changes, string name, TOptions first, Func<TOptions, bool, Func<bool>, OptionsApplied> changed, Action<Exception> refused)
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
        _hung = TimeProvider.System.CreateTimer(static state => ((OptionsFollower<TOptions>)state!).CheckHung(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
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
    /// How long the owner may take over a value before it is reported as hung (a key file's read that does not
    /// answer) and the newest value is handed on beside it. A read of a few small files takes milliseconds;
    /// this leaves a loaded machine room before a slow read is called hung.
    /// </summary>
    internal static TimeSpan HungAfter { get; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The most hand-overs given up on whose owner has still not returned. Each holds a thread for as long
    /// as its read hangs; a change that names the same hung file again hangs as well, so past this the
    /// newest value waits for one of them to return (it was reported) rather than take one more thread.
    /// </summary>
    internal const int MaxAbandoned = 3;

    /// <summary>
    /// Stops following. A value being handed on is not waited for (it may be reading a key file that never
    /// answers): the owner must let a call that ends after its own disposal change nothing.
    /// </summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _queued?.Handed.TrySetResult();
            _queued = null;
        }

        _stopped.TrySetResult();
        foreach (IDisposable subscription in _subscriptions)
        {
            subscription.Dispose();
        }

        _check.Dispose();
        _hung.Dispose();
    }

    /// <summary>
    /// Queues a value the monitor announces, to be handed on from a pool thread, and waits for it as the
    /// monitor's listeners are waited for (a reload returns once its options are in force), but no longer
    /// than <see cref="HungAfter"/>, nor past this follower's disposal. The listener runs inside the
    /// configuration's change callback: waiting there for an owner whose key file's read did not answer
    /// held every later change of the configuration (of any options) for as long, and the host's stop with
    /// it, and each of those changes took one more thread, waiting its turn to be handed on.
    /// </summary>
    private void Announce(TOptions options)
    {
        Task handed;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _announced++; // a read of the monitor begun before this returns an older value: not handed on after it
            _seen = options;
            _beforeChange = null; // the monitor has taken the change
            handed = Queue(options, readAt: null);
        }

        Task.WaitAny([handed, _stopped.Task], HungAfter);
    }

    /// <summary>
    /// Makes <paramref name="value"/> the next to hand on, and starts a hand-over unless one runs that has not hung.
    /// Call under the lock. The task ends once the value has been handed on, or replaced by a newer one.
    /// </summary>
    private Task Queue(TOptions value, int? readAt, TaskCompletionSource? handed = null)
    {
        if (readAt is not null && _running is { InOwner: true } running && ReferenceEquals(running.Value, value))
        {
            // A read of the value being handed on now (a retry, or the read after a change): handed on once. Queued,
            // it was handed on again beside the first once that one hung, and each such read took one more thread.
            return Task.CompletedTask;
        }

        if (_queued is { } replaced && replaced.Handed != handed)
        {
            replaced.Handed.TrySetResult(); // the newer value is handed on in its place
        }

        _queued = new Queued(value, readAt, handed ?? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        Task queued = _queued.Handed.Task;
        if (_running is null || (_running.Hung && _abandoned < MaxAbandoned))
        {
            if (_running is { } hung)
            {
                hung.Abandoned = true; // its owner must put nothing in force now; its result is ignored
                _abandoned++;
            }

            var offering = new Offering();
            _running = offering;
            ThreadPool.UnsafeQueueUserWorkItem(static state => state.Follower.HandOver(state.Offering), (Follower: this, Offering: offering), preferLocal: false);
        }

        return queued;
    }

    /// <summary>Hands on the queued values, newest only, one at a time, until none is left or this hand-over is given up on.</summary>
    private void HandOver(Offering offering)
    {
        while (true)
        {
            Queued next;
            lock (_lock)
            {
                if (offering.Abandoned || _disposed || _queued is not { } queued)
                {
                    if (_running == offering)
                    {
                        _running = null;
                    }

                    return;
                }

                next = queued;
                _queued = null;
            }

            try
            {
                Offer(next.Value, next.ReadAt, offering);
            }
            finally
            {
                next.Handed.TrySetResult();
            }
        }
    }

    /// <summary>
    /// The owner has not returned from the value it was handed <see cref="HungAfter"/> ago: said once (Error: a
    /// file the options name does not answer), and a value queued meanwhile is handed on beside it.
    /// </summary>
    private void CheckHung()
    {
        Offering? hung;
        lock (_lock)
        {
            hung = _running;
            if (_disposed || hung is not { InOwner: true, Hung: false })
            {
                return;
            }

            long left = (long)HungAfter.TotalMilliseconds - (Environment.TickCount64 - hung.Since);
            if (left > 0)
            {
                _hung.Change(TimeSpan.FromMilliseconds(left), Timeout.InfiniteTimeSpan); // armed for an earlier value that returned in time
                return;
            }

            hung.Hung = true;
            if (_queued is { } queued)
            {
                Queue(queued.Value, queued.ReadAt, queued.Handed); // beside it, unless MaxAbandoned are hung already
            }
        }

        _refused(new TimeoutException(
            $"Applying the changed options has not finished after {HungAfter.TotalSeconds:0} s: a key or trust file they name does not answer " +
            "(a named pipe nobody writes, a hung network mount?). The options in force stay until it does; a later change is applied meanwhile."));
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

            lock (_lock)
            {
                if (_disposed)
                {
                    return;
                }

                if (announced != _announced)
                {
                    continue; // a value already replaced: read the newer one
                }

                Queue(options, announced);
                return;
            }
        }
    }

    /// <summary>
    /// Hands <paramref name="options"/> on unless taken already; <paramref name="readAt"/> is the count of
    /// announcements when a read of the monitor began, null for a value the monitor announced. Dropped when
    /// a newer value was announced since the read began (it is queued, or a read of it is due). Runs on the
    /// hand-over's thread, the owner called outside <see cref="_lock"/>: it reads key files, and one on a hung
    /// mount held the lock that <see cref="Dispose"/> takes, so the host's stop waited for it, for ever.
    /// </summary>
    private void Offer(TOptions options, int? readAt, Offering offering)
    {
        bool again;
        lock (_lock)
        {
            if (_disposed || offering.Abandoned)
            {
                return;
            }

            if (readAt is not null && readAt != _announced)
            {
                return;
            }

            if (readAt is not null && _beforeChange is not null && ReferenceEquals(options, _beforeChange))
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
            else if (readAt is not null)
            {
                _seen = options;
                _beforeChange = null;
            }

            again = ReferenceEquals(options, _taken);
            if (again && !_keyFilePending)
            {
                return;
            }

            offering.InOwner = true;
            offering.Value = options;
            offering.Since = Environment.TickCount64;
            _hung.Change(HungAfter, Timeout.InfiniteTimeSpan);
        }

        OptionsApplied applied;
        try
        {
            applied = _changed(options, again, () => offering.Abandoned);
        }
        catch (Exception ex)
        {
            // The owner's bug, not the configuration's: reported (Error, with its cause) and tried again as a
            // value it could not take. Thrown on this pool thread, it would end the process.
            applied = OptionsApplied.Refused(ex);
        }

        lock (_lock)
        {
            offering.InOwner = false;
            if (offering.Abandoned)
            {
                _abandoned--;
                if (_queued is { } waiting && _running is { Hung: true })
                {
                    Queue(waiting.Value, waiting.ReadAt, waiting.Handed); // held back while MaxAbandoned were hung: one has returned
                }
            }
            else
            {
                _hung.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }

        Exception? failed;
        lock (_lock)
        {
            if (offering.Abandoned || _disposed)
            {
                return; // given up on (a newer value went on beside it), or nothing left to report or retry for
            }

            if (applied.Failure is null)
            {
                _taken = options;
                _keyFilePending = applied.KeyFilePending;
                if (_keyFilePending)
                {
                    _check.Change(RetryInterval, Timeout.InfiniteTimeSpan); // its key file may be there by then
                }

                return;
            }

            failed = RetryLater() ? applied.Failure : null;
        }

        if (failed is not null)
        {
            _refused(failed);
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

    /// <summary>A value to hand on: a read's, with the count of announcements when it began, or an announced one (null); <paramref name="Handed"/> ends once it is handed on or replaced.</summary>
    private sealed record Queued(TOptions Value, int? ReadAt, TaskCompletionSource Handed);

    /// <summary>One hand-over: a pool thread handing values on in turn. Its fields are changed under the follower's lock.</summary>
    private sealed class Offering
    {
        /// <summary>The owner has been handed a value and has not returned.</summary>
        public bool InOwner { get; set; }

        /// <summary>The value the owner was last handed.</summary>
        public TOptions? Value { get; set; }

        /// <summary>When the owner was last handed a value (<see cref="Environment.TickCount64"/>).</summary>
        public long Since { get; set; }

        /// <summary>The owner has not returned within <see cref="HungAfter"/>; said once.</summary>
        public bool Hung { get; set; }

        /// <summary>Given up on: a newer value is handed on beside it, and what this one's owner makes of its value is dropped. Read by the owner without the lock.</summary>
        public bool Abandoned
        {
            get => Volatile.Read(ref _gaveUp);
            set => Volatile.Write(ref _gaveUp, value);
        }

        private bool _gaveUp;
    }
}
