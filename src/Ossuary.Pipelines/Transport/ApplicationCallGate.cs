namespace Ossuary.Pipelines.Transport;

/// <summary>
/// Whether the application is inside a read (from <c>ReadAsync</c> to <c>AdvanceTo</c>) or a write
/// (from <c>GetMemory</c> to <c>Advance</c>) on one of its pipe ends, so that disposal on another
/// thread completes that end only once the call is over. Completed under the call, the pipe would
/// hand the memory the application is reading or filling back to the pool, where another
/// connection's plaintext goes next: the application would read that, or write into it.
/// </summary>
/// <remarks>A mutable struct: keep it in a field and call it there, never on a copy.</remarks>
internal struct ApplicationCallGate
{
    private const int Idle = 0;
    private const int InCall = 1;
    private const int CompleteAfterCall = 2;
    private const int Completed = 3;

    private int _state;

    /// <summary>True while a completion waits for the application's call to end.</summary>
    public readonly bool CompletionWaiting => Volatile.Read(in _state) == CompleteAfterCall;

    /// <summary>
    /// The application begins a call (again within one is fine). False once a completion has been
    /// asked for: the call must not be given memory the pipe is about to give back.
    /// </summary>
    public bool TryEnter()
    {
        int state = Volatile.Read(ref _state);
        if (state == Idle)
        {
            state = Interlocked.CompareExchange(ref _state, InCall, Idle);
        }

        return state is Idle or InCall;
    }

    /// <summary>The application's call is over. True if a completion waited for it: the caller completes the pipe now.</summary>
    public bool Leave() =>
        Interlocked.CompareExchange(ref _state, Idle, InCall) == CompleteAfterCall
        && Interlocked.CompareExchange(ref _state, Completed, CompleteAfterCall) == CompleteAfterCall;

    /// <summary>
    /// Another thread wants the end completed. True if it may complete the pipe now; false if the
    /// application's call in progress will (<see cref="Leave"/>), or the end is completed already.
    /// </summary>
    public bool TryCompleteNow()
    {
        while (true)
        {
            switch (Volatile.Read(ref _state))
            {
                case Idle when Interlocked.CompareExchange(ref _state, Completed, Idle) == Idle:
                    return true;
                case InCall when Interlocked.CompareExchange(ref _state, CompleteAfterCall, InCall) == InCall:
                    return false;
                case CompleteAfterCall or Completed:
                    return false;
            }
        }
    }

    /// <summary>The application completes its end itself: no call of its own is in progress.</summary>
    public void MarkCompleted() => Volatile.Write(ref _state, Completed);
}
