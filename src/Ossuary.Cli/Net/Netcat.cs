using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Cli.Net;

/// <summary>
/// stdin → peer and peer → stdout. Ossuary has no half-close (its Disconnect ends both
/// directions), so the end of a session is decided like this:
/// <list type="bullet">
/// <item>After the end of stdin (everything read from it handed to the connection), we keep receiving.</item>
/// <item>If the peer has sent anything since our last byte, it is answering or streaming: we wait
///   until it closes, however long its pauses.</item>
/// <item>Otherwise, when it has sent nothing for <c>--wait</c> seconds since the end of our stdin,
///   we close, and say so (anything it sends later is lost). <c>--wait forever</c> never closes first.</item>
/// <item>A peer that closes while our stdin (a pipe or file) has not ended is reported as data not sent.</item>
/// </list>
/// So a side that only receives never cuts the sender off, and a side that only sends closes
/// once the receiver has been silent for <c>--wait</c> after everything was sent.
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
        Stream stdout = Console.OpenStandardOutput();
        var activity = new Activity();
        using var stopSending = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task fromPeer = ReceiveAsync(secure.Input, stdout, activity, cancellationToken);
        Task toPeer = SendAsync(Stdin.Value, secure.Output, activity, stopSending.Token);
        if (await Task.WhenAny(fromPeer, toPeer) == toPeer)
        {
            await toPeer; // stdin ended, every byte of it handed to the connection
            if (!await PeerClosesAsync(fromPeer, activity, wait, cancellationToken))
            {
                await secure.Output.CompleteAsync(); // Disconnect (clean)
                return NetcatEnd.ClosedWhenIdle;
            }

            await secure.Output.CompleteAsync();
            await fromPeer; // surfaces the reason if the peer failed rather than closed
            return NetcatEnd.PeerClosed;
        }

        // The peer closed (or failed, or stdout went away) first: stop reading stdin, so that
        // the next connection of a listen server gets what follows.
        stopSending.Cancel();
        bool stdinEnded;
        try
        {
            await toPeer;
            stdinEnded = true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            stdinEnded = false;
        }
        catch (Exception) when (fromPeer.IsFaulted)
        {
            stdinEnded = false; // the connection failed both ways; fromPeer says why
        }

        await secure.Output.CompleteAsync();
        await fromPeer;
        return stdinEnded || !Console.IsInputRedirected ? NetcatEnd.PeerClosed : NetcatEnd.PeerClosedBeforeEndOfInput;
    }

    /// <summary>True when the peer closed (or failed); false when it stayed silent for <paramref name="wait"/> since our last byte.</summary>
    private static async Task<bool> PeerClosesAsync(Task fromPeer, Activity activity, TimeSpan? wait, CancellationToken cancellationToken)
    {
        long stdinEnded = Stopwatch.GetTimestamp();
        while (!fromPeer.IsCompleted)
        {
            if (wait is not { } idle || activity.PeerSpokeLast)
            {
                // It is answering or streaming: only its close ends the session.
                await Task.WhenAny(fromPeer, Task.Delay(Timeout.Infinite, cancellationToken));
                cancellationToken.ThrowIfCancellationRequested();
                return true;
            }

            TimeSpan left = idle - Stopwatch.GetElapsedTime(stdinEnded);
            if (left <= TimeSpan.Zero)
            {
                return false;
            }

            await Task.WhenAny(fromPeer, Task.Delay(left < IdlePoll ? left : IdlePoll, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
        }

        return true;
    }

    private static async Task ReceiveAsync(PipeReader input, Stream stdout, Activity activity, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult read = await input.ReadAsync(cancellationToken);
            if (!read.Buffer.IsEmpty)
            {
                activity.Received();
            }

            try
            {
                foreach (ReadOnlyMemory<byte> segment in read.Buffer)
                {
                    await stdout.WriteAsync(segment, cancellationToken);
                }

                await stdout.FlushAsync(cancellationToken);
            }
            catch (IOException)
            {
                // `ossuary connect ... | head -c 100`: the reader is gone, and so is the point of the connection.
                throw new CliException("standard output was closed (broken pipe); ended the connection");
            }

            input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                return;
            }
        }
    }

    private static async Task SendAsync(PipeReader source, PipeWriter output, Activity activity, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult read = await source.ReadAsync(cancellationToken);
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
                return;
            }
        }
    }

    private static async Task PumpStdinAsync(PipeWriter writer)
    {
        await Task.Yield();
        try
        {
            await PlaintextPump.FromStreamAsync(Console.OpenStandardInput(), writer, CancellationToken.None);
            await writer.CompleteAsync();
        }
        catch (Exception ex)
        {
            await writer.CompleteAsync(ex);
        }
    }

    /// <summary>Who spoke last: the moments of our last byte sent and of the peer's last byte received.</summary>
    private sealed class Activity
    {
        private long _lastSent;
        private long _lastReceived;

        /// <summary>True when the peer has sent something since our last byte.</summary>
        public bool PeerSpokeLast => Volatile.Read(ref _lastReceived) > Volatile.Read(ref _lastSent);

        public void Sent() => Volatile.Write(ref _lastSent, Stopwatch.GetTimestamp());

        public void Received() => Volatile.Write(ref _lastReceived, Stopwatch.GetTimestamp());
    }
}
