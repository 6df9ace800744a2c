using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Cli.Net;

/// <summary>
/// stdin → peer and peer → stdout. Ossuary has no half-close (its Disconnect ends both
/// directions), so the end of a session is decided like this:
/// <list type="bullet">
/// <item>After the end of stdin (everything read from it handed to the connection), we keep receiving.</item>
/// <item>A side that has sent nothing while the peer has sent something is there to receive: it
///   waits until the peer closes, however long the peer's pauses (netcat's default).</item>
/// <item>Otherwise, once nothing has moved either way for <c>--wait</c> seconds (idle time, not a
///   deadline: time spent writing to a slow stdout, and <see cref="IdlePoll"/> after it, counts as activity, even with <c>--wait 0</c>), we
///   close (netcat's <c>-q</c>); what had arrived by then is written to stdout before the session ends.
///   If the peer sent nothing after our last byte, we say so: it may have been about to answer.</item>
/// <item><c>--wait forever</c> never closes first.</item>
/// <item>A peer that closes while our stdin (a pipe or file) has not ended is reported as data not sent.</item>
/// </list>
/// So a receiver never cuts off a slow sender, and a sender closes once everything is out and the
/// line has been quiet for <c>--wait</c>.
/// </summary>
internal static class Netcat
{
    /// <summary>
    /// stdin, read by one pump for the whole process. A read of the console stream cannot be
    /// cancelled, so a per-connection read left pending when the peer closed first would swallow
    /// the next bytes typed for the following connection of a <c>listen</c> server; a cancelled
    /// read of this pipe consumes nothing.
    /// </summary>
    private static readonly Lazy<PipeReader> Stdin = new(() =>
    {
        var pipe = new Pipe();
        _ = PumpStdinAsync(pipe.Writer);
        return pipe.Reader;
    });

    private static readonly TimeSpan IdlePoll = TimeSpan.FromMilliseconds(50);

    /// <summary>Starts reading stdin now, so that a peer that answers at once finds stdin's end already seen.</summary>
    public static void StartReadingStdin() => _ = Stdin.Value;

    /// <summary>Runs a session until it ends; throws if the peer failed or stdout was closed.</summary>
    /// <param name="secure">The connection.</param>
    /// <param name="wait">How long a silent peer is waited for after the end of stdin; null waits until it closes.</param>
    /// <param name="cancellationToken">Ends the session (Ctrl+C).</param>
    public static async Task<NetcatEnd> RunAsync(OssuaryDuplexPipe secure, TimeSpan? wait, CancellationToken cancellationToken)
    {
        var activity = new Activity();
        try
        {
            return await RunSessionAsync(secure, activity, wait, cancellationToken);
        }
        catch (OssuaryException ex) when (ex is { Reason: OssuaryErrorReason.ConnectionFailed, InnerException: null } && activity.Received)
        {
            // The peer's Disconnect (error) after it had sent data: it failed or was stopped. Not a
            // refusal of our key, which comes right after the handshake, before the peer sends anything.
            throw new OssuaryException(
                ex.Reason,
                "the peer ended the connection with an error after it had sent data (it failed or was stopped); what was in flight either way may not have arrived",
                ex);
        }
        catch (Exception ex) when (ex is not OssuaryException)
        {
            // Our own failure (stdin, stdout) or an interruption: what was in flight is lost, so the
            // peer is told with Disconnect (error) rather than left to take this for a clean close.
            await secure.Output.CompleteAsync(ex);
            throw;
        }
    }

    private static async Task<NetcatEnd> RunSessionAsync(OssuaryDuplexPipe secure, Activity activity, TimeSpan? wait, CancellationToken cancellationToken)
    {
        Stream stdout = StdPaths.OpenStdout();
        using var stopSending = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task fromPeer = ReceiveAsync(secure.Input, stdout, activity, cancellationToken);
        Task<bool> toPeer = SendAsync(Stdin.Value, secure.Output, activity, stopSending.Token);
        if (await Task.WhenAny(fromPeer, toPeer) == toPeer && await toPeer)
        {
            // stdin ended, every byte of it handed to the connection
            if (await PeerClosesAsync(fromPeer, activity, wait, cancellationToken) is { } closed)
            {
                await secure.Output.CompleteAsync(); // Disconnect (clean)

                // What arrived before our Disconnect is still the peer's answer: written to stdout before
                // the session is over, not cut off by the process's exit (connect) or written over the
                // next session's bytes (listen). Our Disconnect ends the input once that is read.
                await fromPeer;
                return closed;
            }

            // The peer closed or failed, or our stdout did: the reason surfaces before any clean Disconnect.
            await fromPeer;
            await secure.Output.CompleteAsync();
            return NetcatEnd.PeerClosed;
        }

        // The peer closed (or failed, or stdout went away) first: stop reading stdin, so that
        // the next connection of a listen server gets what follows.
        stopSending.Cancel();
        bool stdinEnded;
        try
        {
            stdinEnded = await toPeer;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            stdinEnded = false;
        }
        catch (Exception) when (fromPeer.IsFaulted)
        {
            stdinEnded = false; // the connection failed both ways; fromPeer says why
        }

        if (fromPeer.IsCompleted)
        {
            await fromPeer; // a failure of our stdout, before any clean Disconnect
        }

        await secure.Output.CompleteAsync();
        await fromPeer;
        return stdinEnded || !Console.IsInputRedirected ? NetcatEnd.PeerClosed : NetcatEnd.PeerClosedBeforeEndOfInput;
    }

    /// <summary>Null when the peer closed (or failed); how we closed when the line was idle for <paramref name="wait"/>.</summary>
    private static async Task<NetcatEnd?> PeerClosesAsync(Task fromPeer, Activity activity, TimeSpan? wait, CancellationToken cancellationToken)
    {
        long stdinEnded = Stopwatch.GetTimestamp();
        while (!fromPeer.IsCompleted)
        {
            if (wait is not { } idle || activity.OnlyReceives)
            {
                // Only the peer's close ends the session. Not WhenAny with Task.Delay(Infinite, token):
                // that delay and its registration on the process's token outlived every session.
                await fromPeer.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                cancellationToken.ThrowIfCancellationRequested();
                return null;
            }

            // A write to stdout in progress is activity whatever --wait says, 0 included: its bytes are
            // the peer's answer, and a slow reader of stdout is not an idle line.
            TimeSpan left = activity.Busy ? IdlePoll : idle - Stopwatch.GetElapsedTime(Math.Max(stdinEnded, activity.Last));
            if (left <= TimeSpan.Zero)
            {
                return activity.PeerSpokeLast ? NetcatEnd.ClosedWhenIdle : NetcatEnd.ClosedUnanswered;
            }

            await Task.WhenAny(fromPeer, Task.Delay(left < IdlePoll ? left : IdlePoll, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
        }

        return null;
    }

    private static async Task ReceiveAsync(PipeReader input, Stream stdout, Activity activity, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult read = await ReadNextAsync(input, activity, cancellationToken);
            if (!read.Buffer.IsEmpty)
            {
                activity.Receiving(busy: true);
                try
                {
                    foreach (ReadOnlyMemory<byte> segment in read.Buffer)
                    {
                        await stdout.WriteAsync(segment, cancellationToken);
                    }

                    await stdout.FlushAsync(cancellationToken);
                }
                catch (IOException ex)
                {
                    // `ossuary connect ... | head -c 100`: the reader is gone, and so is the point of the
                    // connection. Any other failure (a full disk) keeps its own reason.
                    throw new CliException(ex.HResult == SystemFailure.BrokenPipe
                        ? "standard output was closed (broken pipe); ended the connection"
                        : $"cannot write to standard output: {ex.Message}; ended the connection");
                }
            }

            input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                return;
            }
        }
    }

    /// <summary>
    /// The next read. After a write to stdout the line stays busy until this read has waited <see cref="IdlePoll"/>
    /// for nothing: while stdout was slow the connection held back what the peer had sent (its input pauses at a few
    /// frames unread), and it brings that in only once the write is done. An idle close in that moment (at
    /// <c>--wait 0</c>, at once) sent our Disconnect first, and the bytes that had reached us were dropped with exit 0.
    /// </summary>
    private static async ValueTask<ReadResult> ReadNextAsync(PipeReader input, Activity activity, CancellationToken cancellationToken)
    {
        ValueTask<ReadResult> next = input.ReadAsync(cancellationToken);
        if (next.IsCompleted || !activity.Busy)
        {
            return await next;
        }

        Task<ReadResult> pending = next.AsTask();
        if (await Task.WhenAny(pending, Task.Delay(IdlePoll, cancellationToken)) != pending)
        {
            activity.Receiving(busy: false);
        }

        return await pending;
    }

    /// <summary>Sends stdin until it ends (true) or the connection ends first (false).</summary>
    private static async Task<bool> SendAsync(PipeReader source, PipeWriter output, Activity activity, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult read;
            try
            {
                read = await source.ReadAsync(cancellationToken);
            }
            catch (IOException ex)
            {
                // Alone, the system's reason ("Connection reset by peer") would read like the Ossuary peer's.
                throw new CliException($"cannot read standard input: {ex.Message}; ended the connection");
            }

            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                output.Write(segment.Span);
            }

            bool any = !read.Buffer.IsEmpty;
            source.AdvanceTo(read.Buffer.End);
            FlushResult flushed = await output.FlushAsync(cancellationToken);
            if (any)
            {
                activity.Sent();
            }

            if (read.IsCompleted || flushed.IsCompleted)
            {
                // Ended by stdin, unless the connection closed with bytes of ours still unsent
                // (an empty last read lost nothing, however fast the peer left).
                return read.IsCompleted && (!flushed.IsCompleted || !any);
            }
        }
    }

    private static async Task PumpStdinAsync(PipeWriter writer)
    {
        await Task.Yield();
        try
        {
            // A stdin the shell closed (<&-) has nothing to send, as /dev/null: a read of what took
            // its place would never end, and a receive-only session would never see the end of stdin.
            if (!ClosedStdio.Stdin)
            {
                await PlaintextPump.FromStreamAsync(StdPaths.OpenStdin(), writer, CancellationToken.None);
            }

            await writer.CompleteAsync();
        }
        catch (Exception ex)
        {
            await writer.CompleteAsync(ex);
        }
    }

    /// <summary>Who has sent what, and when anything last moved.</summary>
    private sealed class Activity
    {
        private long _lastSent;
        private long _lastReceived;
        private int _busy;

        /// <summary>True when we have sent nothing and the peer has sent something: we are there to receive.</summary>
        public bool OnlyReceives => Volatile.Read(ref _lastSent) == 0 && Volatile.Read(ref _lastReceived) != 0;

        /// <summary>True once the peer has sent anything.</summary>
        public bool Received => Volatile.Read(ref _lastReceived) != 0;

        /// <summary>True when the peer has sent something since our last byte.</summary>
        public bool PeerSpokeLast => Volatile.Read(ref _lastReceived) > Volatile.Read(ref _lastSent);

        /// <summary>True while received bytes are being written to stdout, and until the next read has waited a moment (a slow reader is not an idle line).</summary>
        public bool Busy => Volatile.Read(ref _busy) != 0;

        /// <summary>The last moment anything moved either way.</summary>
        public long Last => Math.Max(Volatile.Read(ref _lastSent), Volatile.Read(ref _lastReceived));

        public void Sent() => Volatile.Write(ref _lastSent, Stopwatch.GetTimestamp());

        public void Receiving(bool busy)
        {
            Volatile.Write(ref _lastReceived, Stopwatch.GetTimestamp());
            Volatile.Write(ref _busy, busy ? 1 : 0);
        }
    }
}
