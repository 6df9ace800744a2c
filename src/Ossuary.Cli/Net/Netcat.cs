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
///   deadline), we close (netcat's <c>-q</c>). Never while this process holds a byte of the peer's not yet
///   on stdout, even with <c>--wait 0</c>: every data packet read from the socket (counted from its header,
///   <see cref="ArrivedPlaintext"/>) must have reached stdout, and the system must hold nothing unread.
///   If the peer sent nothing after our last byte, we say so: it may have been about to answer.</item>
/// <item>What the peer sent while our Disconnect was on its way is discarded by our closed session (the
///   protocol has no half-close). So after the idle close we read the socket until the peer closes (at most
///   <see cref="DrainLimit"/>) and count the data packets that came: any means bytes the peer sent were not
///   written, and the session ends as <see cref="NetcatEnd.ClosedOverLateData"/> with their number, never as a clean close;
///   a close not seen (time up, a reset) leaves them uncounted, and it ends as <see cref="NetcatEnd.ClosedUnconfirmed"/>.</item>
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

    /// <summary>How long the peer's close is waited for after our idle close, as the library waits for a peer's close after its Disconnect.</summary>
    private static readonly TimeSpan DrainLimit = TimeSpan.FromSeconds(5);

    /// <summary>Starts reading stdin now, so that a peer that answers at once finds stdin's end already seen.</summary>
    public static void StartReadingStdin() => _ = Stdin.Value;

    /// <summary>Runs a session until it ends; throws if the peer failed or stdout was closed.</summary>
    /// <param name="secure">The connection.</param>
    /// <param name="transport">The socket under it, which tells what arrived.</param>
    /// <param name="wait">How long a silent peer is waited for after the end of stdin; null waits until it closes.</param>
    /// <param name="cancellationToken">Ends the session (Ctrl+C).</param>
    public static async Task<NetcatResult> RunAsync(OssuaryDuplexPipe secure, SocketPipe transport, TimeSpan? wait, CancellationToken cancellationToken)
    {
        var activity = new Activity();
        try
        {
            return await RunSessionAsync(secure, transport, activity, wait, cancellationToken);
        }
        catch (OssuaryException ex) when (ex is { Reason: OssuaryErrorReason.ConnectionFailed, InnerException: null }
            && transport.Arrived.DescribeMalformedDisconnect("the peer") is { } malformed)
        {
            // Said as what it was, not as the peer's failure or a refusal of our key.
            throw new OssuaryException(ex.Reason, malformed, ex);
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

    private static async Task<NetcatResult> RunSessionAsync(OssuaryDuplexPipe secure, SocketPipe transport, Activity activity, TimeSpan? wait, CancellationToken cancellationToken)
    {
        Stream stdout = StdPaths.OpenStdout();
        long goodbyesBefore = transport.Arrived.Goodbyes; // the handshake's resets, if any: none is the peer's last word
        using var stopSending = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var stopReceiving = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task fromPeer = ReceiveAsync(secure.Input, stdout, activity, stopReceiving.Token, cancellationToken);
        Task<bool> toPeer = SendAsync(Stdin.Value, secure.Output, activity, stopSending.Token);
        if (await Task.WhenAny(fromPeer, toPeer) == toPeer && await toPeer)
        {
            // stdin ended, every byte of it handed to the connection
            if (await PeerClosesAsync(fromPeer, transport, activity, wait, cancellationToken) is { } closed)
            {
                await secure.Output.CompleteAsync(); // Disconnect (clean)
                long goodbye = Stopwatch.GetTimestamp();

                // What arrived before our Disconnect is still the peer's answer: written to stdout before
                // the session is over, not cut off by the process's exit (connect) or written over the
                // next session's bytes (listen). Our Disconnect ends the input once the peer's next packet
                // or its close is read: a peer that sends neither held the tool for ever. After DrainLimit
                // the input is read no more, and what arrived unwritten is counted as lost.
                await fromPeer.WaitAsync(DrainLimit, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (cancellationToken.IsCancellationRequested)
                {
                    throw InterruptedAfterGoodbye();
                }

                stopReceiving.Cancel();
                try
                {
                    await fromPeer;
                }
                catch (OssuaryException) when (transport.Arrived.Bytes > activity.Written)
                {
                    // The library's own report of the peer's data that crossed our Disconnect (it reads on for
                    // the peer's answer): counted below with the rest, and said as the tool says it.
                }

                return await CountLateDataAsync(secure, transport, activity, closed, goodbyesBefore, DrainLimit - Stopwatch.GetElapsedTime(goodbye), cancellationToken);
            }

            // The peer closed or failed, or our stdout did: the reason surfaces before any clean Disconnect.
            await fromPeer;
            await secure.Output.CompleteAsync();
            return new(NetcatEnd.PeerClosed);
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
        return new(stdinEnded || !Console.IsInputRedirected ? NetcatEnd.PeerClosed : NetcatEnd.PeerClosedBeforeEndOfInput);
    }

    /// <summary>
    /// After our idle close: the session is disposed (it reads the socket no more), then the socket is read
    /// until the peer's close; data packets among what came are the peer's bytes that crossed our Disconnect.
    /// </summary>
    private static async Task<NetcatResult> CountLateDataAsync(OssuaryDuplexPipe secure, SocketPipe transport, Activity activity, NetcatEnd closed, long goodbyesBefore, TimeSpan left, CancellationToken cancellationToken)
    {
        await secure.DisposeAsync();
        Exception? unseen;
        try
        {
            unseen = await transport.DrainAfterGoodbyeAsync(goodbyesBefore, left > TimeSpan.Zero ? left : TimeSpan.Zero, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            throw InterruptedAfterGoodbye();
        }

        string? why = unseen switch
        {
            null => null,
            TimeoutException => $"it did not close within {DrainLimit.TotalSeconds:0} s",
            _ => $"the connection failed before it closed ({unseen.Message})",
        };
        long late = transport.Arrived.Bytes - activity.Written;
        return late > 0 ? new(NetcatEnd.ClosedOverLateData, late, why)
            : why is null ? new(closed)
            : new(NetcatEnd.ClosedUnconfirmed, 0, why);
    }

    /// <summary>Ctrl+C during the wait for the peer's close: no end the peer chose, and what it sent meanwhile went uncounted.</summary>
    private static CliException InterruptedAfterGoodbye() => new(
        "interrupted while waiting for the peer to close after this side's close (--wait was over); anything it sent meanwhile was not written to stdout");

    /// <summary>Null when the peer closed (or failed); how we closed when the line was idle for <paramref name="wait"/>.</summary>
    private static async Task<NetcatEnd?> PeerClosesAsync(Task fromPeer, SocketPipe transport, Activity activity, TimeSpan? wait, CancellationToken cancellationToken)
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

            // Bytes of the peer's still in this process (a write to a slow stdout, packets the connection
            // holds back meanwhile) or in the system's socket are activity whatever --wait says, 0 included:
            // they are the peer's answer, and our Disconnect would have the session discard those not yet opened.
            bool holding = transport.Arrived.Bytes != activity.Written || transport.HoldsUnreadBytes;
            TimeSpan left = holding ? IdlePoll : idle - Stopwatch.GetElapsedTime(Math.Max(stdinEnded, activity.Last));
            if (left <= TimeSpan.Zero)
            {
                return activity.PeerSpokeLast ? NetcatEnd.ClosedWhenIdle : NetcatEnd.ClosedUnanswered;
            }

            await Task.WhenAny(fromPeer, Task.Delay(left < IdlePoll ? left : IdlePoll, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
        }

        return null;
    }

    /// <summary>Writes the peer's bytes to stdout until the input ends, or <paramref name="stopReading"/> alone says to read no more.</summary>
    private static async Task ReceiveAsync(PipeReader input, Stream stdout, Activity activity, CancellationToken stopReading, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult read;
            try
            {
                read = await input.ReadAsync(stopReading);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return; // the wait after our Disconnect is over: what arrived unwritten is counted as lost (CountLateDataAsync)
            }

            if (!read.Buffer.IsEmpty)
            {
                activity.Arriving();
                try
                {
                    foreach (ReadOnlyMemory<byte> segment in read.Buffer)
                    {
                        await stdout.WriteAsync(segment, cancellationToken);
                    }

                    await stdout.FlushAsync(cancellationToken);
                    activity.WroteToStdout(read.Buffer.Length);
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
        private long _written;

        /// <summary>True when we have sent nothing and the peer has sent something: we are there to receive.</summary>
        public bool OnlyReceives => Volatile.Read(ref _lastSent) == 0 && Volatile.Read(ref _lastReceived) != 0;

        /// <summary>True once the peer has sent anything.</summary>
        public bool Received => Volatile.Read(ref _lastReceived) != 0;

        /// <summary>True when the peer has sent something since our last byte.</summary>
        public bool PeerSpokeLast => Volatile.Read(ref _lastReceived) > Volatile.Read(ref _lastSent);

        /// <summary>The peer's bytes written to stdout.</summary>
        public long Written => Interlocked.Read(ref _written);

        /// <summary>The last moment anything moved either way.</summary>
        public long Last => Math.Max(Volatile.Read(ref _lastSent), Volatile.Read(ref _lastReceived));

        public void Sent() => Volatile.Write(ref _lastSent, Stopwatch.GetTimestamp());

        public void Arriving() => Volatile.Write(ref _lastReceived, Stopwatch.GetTimestamp());

        /// <summary>A write to stdout is done: counted, and the line was busy until now.</summary>
        public void WroteToStdout(long bytes)
        {
            Interlocked.Add(ref _written, bytes);
            Arriving();
        }
    }
}
