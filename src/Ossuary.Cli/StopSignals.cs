using System.Runtime.InteropServices;

namespace Ossuary.Cli;

/// <summary>
/// Ctrl+C, SIGTERM and SIGHUP. The first cancels the command's token, so that it can clean up
/// (<c>receive</c> removes its partial file) and say why it stopped; a command that then fails ends
/// the process by that signal, as a program without a handler ends, so its parent sees it: a shell
/// reports 128 + the signal's number (130, 143, 129). Exit 1 told a shell the tool had handled the
/// signal and chosen to fail: bash, which waits for its foreground child before acting on the
/// Ctrl+C it got too, went on with the script, so <c>for f in *; do ossuary send "$f" ...; done</c>
/// took one Ctrl+C per file. A command that still succeeded (the file was confirmed) exits 0.
/// </summary>
internal sealed partial class StopSignals : IDisposable
{
    // A read of stdin or a write to stdout cannot be cancelled: a command still in one is ended.
    private static readonly TimeSpan CleanupLimit = TimeSpan.FromSeconds(3);

    // How long a signal raised again may take to arrive through the runtime's signal thread.
    private static readonly TimeSpan DeliveryLimit = TimeSpan.FromSeconds(10);

    private readonly CancellationTokenSource _stopping = new();
    private readonly PosixSignalRegistration[] _registrations;
    private int _received; // the signal's number; 0 until one arrives
    private volatile bool _disposed;

    public StopSignals()
    {
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal),
            PosixSignalRegistration.Create(PosixSignal.SIGHUP, OnSignal),
        ];
    }

    /// <summary>Cancelled by the first of the signals.</summary>
    public CancellationToken Token => _stopping.Token;

    /// <summary>
    /// After a signal, ends the process by it (Linux, macOS), once the command has cleaned up and
    /// reported; returns at once if no signal came, and on Windows, whose exit code then stays 1.
    /// </summary>
    public void EndBySignalIfReceived()
    {
        int number = Volatile.Read(ref _received);
        if (number == 0 || OperatingSystem.IsWindows())
        {
            return;
        }

        // Without a registration the runtime does what it does for a signal nobody handles: it
        // restores the terminal, puts back the system's default action and raises the signal again.
        foreach (PosixSignalRegistration registration in _registrations)
        {
            registration.Dispose();
        }

        if (Kill(Environment.ProcessId, number) == 0)
        {
            Thread.Sleep(DeliveryLimit);
        }
    }

    /// <summary>
    /// Stops handling the signals: from here one ends the process by its default action (a shell sees
    /// 128 + its number). The token source is left undisposed (it holds no timer and no registration):
    /// a handler that passed its check of <see cref="_disposed"/> just before may still cancel it.
    /// </summary>
    public void Dispose()
    {
        _disposed = true;
        foreach (PosixSignalRegistration registration in _registrations)
        {
            registration.Dispose();
        }
    }

    private void OnSignal(PosixSignalContext context)
    {
        // The runtime runs a handler on the thread pool, so one already dispatched can run after Dispose: its
        // Cancel on the disposed source threw into the thread pool and crashed the process (SIGABRT) while it
        // was ending with the command's own exit code. The command is over: the system's default action for
        // the signal ends the process by it, as the shell expects, which leaving Cancel unset asks for.
        if (_disposed)
        {
            return;
        }

        context.Cancel = true;
        if (Interlocked.CompareExchange(ref _received, Number(context.Signal), 0) != 0)
        {
            return;
        }

        _stopping.Cancel();
        _ = Task.Delay(CleanupLimit).ContinueWith(_ =>
        {
            // `producer | ossuary send -` stopped while the producer is quiet ends here, and a bare
            // end would say nothing.
            Console.Error.WriteLine($"ossuary: interrupted; a read or write in progress did not stop within {CleanupLimit.TotalSeconds:0} s, so the command was ended without finishing its cleanup");
            EndBySignalIfReceived();
            Environment.Exit(ExitCodes.Failure);
        }, TaskScheduler.Default);
    }

    // The numbers are the same on Linux, macOS and FreeBSD; PosixSignal's own values are not them.
    private static int Number(PosixSignal signal) => signal switch
    {
        PosixSignal.SIGHUP => 1,
        PosixSignal.SIGINT => 2,
        PosixSignal.SIGTERM => 15,
        _ => throw new ArgumentOutOfRangeException(nameof(signal), signal, "not one of the signals that stop the tool"),
    };

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int process, int signal);
}
