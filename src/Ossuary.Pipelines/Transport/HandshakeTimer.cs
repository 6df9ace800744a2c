using System.IO.Pipelines;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// Both bounds of one handshake on one timer: the whole handshake's timeout, which cancels
/// <see cref="Token"/>, and the core's per-step wait, which cancels the pending transport read so
/// that the core can act on it (reset). One timer whose due time moves costs a handshake less
/// than a timed token source, a linked one and a new timer for every step (a profile of the
/// handshake loop found the timers and their registrations to be an eighth of its allocations).
/// </summary>
/// <remarks>
/// Locks itself (an internal type nobody else can lock): a <see cref="Lock"/> object was one more
/// allocation on every side of every handshake, and its three short sections are never contended
/// but by a timer that fires at a deadline.
/// </remarks>
internal sealed class HandshakeTimer : IDisposable
{
    // The longest due time every TimeProvider's timers accept; a later deadline is checked again then.
    private static readonly TimeSpan LongestDue = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    private readonly TimeProvider _time;
    private readonly long _started;
    private readonly TimeSpan _timeout;
    private readonly CancellationTokenSource _source;
    private readonly ITimer _timer;

    // The read that the current step's deadline cancels, and that deadline (since _started); null between steps.
    private PipeReader? _stepReader;
    private TimeSpan _stepDue;
    private bool _disposed;
    private volatile bool _timedOut;

    /// <param name="time">The plan's clock.</param>
    /// <param name="timeout">The bound on the whole handshake.</param>
    /// <param name="cancellationToken">The caller's token: <see cref="Token"/> is cancelled with it too.</param>
    /// <param name="started">When the handshake began, if before now (a server's IdentitySelector ran first): the timeout counts from then.</param>
    public HandshakeTimer(TimeProvider time, TimeSpan timeout, CancellationToken cancellationToken, long? started = null)
    {
        _time = time;
        _timeout = timeout;
        _started = started ?? time.GetTimestamp();

        // With a token that cannot be cancelled this is a plain source: nothing is registered.
        _source = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // Started once assigned: a callback that came first would find no timer to move.
        _timer = time.CreateTimer(static state => ((HandshakeTimer)state!).OnDue(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        TimeSpan left = timeout - time.GetElapsedTime(_started);
        _timer.Change(left > TimeSpan.Zero ? Clamp(left) : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Cancelled when the handshake timed out or the caller's token was cancelled.</summary>
    public CancellationToken Token => _source.Token;

    /// <summary>True once the whole handshake's timeout has run out (and <see cref="Token"/> was cancelled for it).</summary>
    public bool TimedOut => _timedOut;

    /// <summary>
    /// The application callback the handshake is waiting for (<c>AuthorizeClient</c>, <c>TrustServer</c>), if any:
    /// a timeout that finds one was this side's doing, not the peer's.
    /// </summary>
    public string? PendingCallback { get; set; }

    /// <summary>From now on, <paramref name="reader"/>'s pending read is cancelled once <paramref name="wait"/> has passed.</summary>
    public void StartStep(PipeReader reader, TimeSpan wait)
    {
        lock (this)
        {
            if (_disposed)
            {
                return;
            }

            // A step that outlasts the handshake ends with it; so computed, a wait near
            // TimeSpan.MaxValue (which the options accept) does not overflow.
            TimeSpan now = _time.GetElapsedTime(_started);
            _stepReader = reader;
            _stepDue = wait < _timeout - now ? now + wait : _timeout;
            Reschedule(now);
        }
    }

    /// <summary>
    /// The step's read returned: its deadline no longer applies. The timer keeps its due time and,
    /// if that was the step's, finds nothing to do then but move on to the handshake's deadline.
    /// A cancellation already under way may still arrive; the handshake takes a cancelled read as
    /// "look again", as it always has.
    /// </summary>
    public void EndStep()
    {
        lock (this)
        {
            _stepReader = null;
        }
    }

    public void Dispose()
    {
        lock (this)
        {
            _disposed = true;
            _stepReader = null;
        }

        _timer.Dispose();
        _source.Dispose();
    }

    private void OnDue()
    {
        PipeReader? overdueRead = null;
        bool timedOut = false;
        lock (this)
        {
            if (_disposed)
            {
                return;
            }

            TimeSpan now = _time.GetElapsedTime(_started);
            if (now >= _timeout)
            {
                timedOut = true;
                _stepReader = null;
            }
            else
            {
                if (_stepReader is not null && now >= _stepDue)
                {
                    overdueRead = _stepReader;
                    _stepReader = null;
                }

                Reschedule(now);
            }
        }

        // Outside the lock: both run callbacks (the read's continuation, the token's registrations).
        if (timedOut)
        {
            _timedOut = true;
            try
            {
                _source.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // disposed between the check above and here: the handshake is over
            }
        }

        overdueRead?.CancelPendingRead();
    }

    private void Reschedule(TimeSpan now)
    {
        TimeSpan next = _stepReader is not null && _stepDue < _timeout ? _stepDue : _timeout;
        TimeSpan due = next - now;
        _timer.Change(due > TimeSpan.Zero ? Clamp(due) : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    /// <summary>A due time every TimeProvider's timers (and a CancellationTokenSource's) accept; a later one is checked again then.</summary>
    internal static TimeSpan Clamp(TimeSpan due) => due < LongestDue ? due : LongestDue;
}
