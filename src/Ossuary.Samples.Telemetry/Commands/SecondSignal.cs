using System.Runtime.InteropServices;

namespace Ossuary.Samples.Telemetry.Commands;

/// <summary>
/// The second of Ctrl+C, SIGTERM or SIGQUIT, which gives up a stop that waits. The first is the host's: its own
/// handlers take it and stop the server (this one leaves it to them). Registered while the server runs, not once
/// its stop has begun: the host's stop starts as the first signal arrives, and a second one before a later
/// registration went to the host's handler alone, which ignores it.
/// </summary>
internal sealed class SecondSignal : IDisposable
{
    private readonly TaskCompletionSource _given = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly PosixSignalRegistration[] _registrations;
    private int _count;

    public SecondSignal() =>
        _registrations = [.. new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGQUIT }.Select(signal => PosixSignalRegistration.Create(signal, Take))];

    /// <summary>Completes at the second signal.</summary>
    public Task Given => _given.Task;

    public void Dispose()
    {
        foreach (PosixSignalRegistration registration in _registrations)
        {
            registration.Dispose();
        }
    }

    private void Take(PosixSignalContext signal)
    {
        if (Interlocked.Increment(ref _count) >= 2)
        {
            signal.Cancel = true;
            _given.TrySetResult();
        }
    }
}
