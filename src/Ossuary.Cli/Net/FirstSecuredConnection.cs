using System.Net.Sockets;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Cli.Net;

/// <summary>
/// Accepts connections and runs their handshakes side by side until one succeeds, for a server that
/// serves one client at a time (<c>receive</c>, netcat-style <c>listen</c>). Taken one at a time,
/// every peer that connected and said nothing held the next one out for a whole handshake timeout,
/// so a stranger who reached the port could keep the expected client out for as long as it kept a
/// connection or two open.
/// </summary>
internal static class FirstSecuredConnection
{
    /// <summary>
    /// Handshakes under way at once, at most: past it, connections wait in the listen backlog until one
    /// ends (each ends by the handshake timeout at the latest), so a flood of connections costs a
    /// bounded number of sockets and read buffers, and never every descriptor (<see cref="ConnectionBudget"/>).
    /// </summary>
    private static readonly int MaxHandshakes = Math.Min(128, ConnectionBudget.Connections);

    /// <summary>
    /// The first connection whose handshake succeeded, or null once <paramref name="onFailed"/> has
    /// asked to stop; the other handshakes under way are closed.
    /// </summary>
    /// <param name="onFailed">
    /// Called after each failed handshake (already reported by <see cref="ServerHandshake"/>); true
    /// stops the wait (<c>listen --once</c>, which ends with its first connection, a refused one included).
    /// </param>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<(SocketPipe Pipe, OssuaryDuplexPipe Secure)?> AcceptAsync(Socket listener, ServerSetup setup, ConnectionFailureLog failures, Func<bool> onFailed, CancellationToken cancellationToken)
    {
        using var settled = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var winner = new TaskCompletionSource<(SocketPipe, OssuaryDuplexPipe)?>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var slots = new SemaphoreSlim(MaxHandshakes);
        var handshakes = new List<Task>();
        Task<Socket>? accepting = null;
        try
        {
            while (true)
            {
                Task slot = slots.WaitAsync(settled.Token);
                if (await Task.WhenAny(slot, winner.Task) == winner.Task)
                {
                    break;
                }

                await slot; // cancelled: the caller's token
                accepting = ListenerAccept.NextAsync(listener, settled.Token);
                if (await Task.WhenAny(accepting, winner.Task) == winner.Task)
                {
                    break;
                }

                Socket socket = await accepting;
                accepting = null;
                handshakes.RemoveAll(task => task.IsCompleted);
                handshakes.Add(HandshakeAsync(socket, setup, failures, winner, slots, onFailed, settled.Token));
            }
        }
        finally
        {
            // One client is served, or the caller gave up: the accept and the other handshakes end here.
            await settled.CancelAsync();
            await Task.WhenAll(handshakes);
            if (accepting is not null)
            {
                // An accept that completed as another client won: that connection is closed unserved too.
                await ((Task)accepting).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (accepting.IsCompletedSuccessfully)
                {
                    accepting.Result.Dispose();
                }
            }
        }

        return await winner.Task;
    }

    private static async Task HandshakeAsync(Socket socket, ServerSetup setup, ConnectionFailureLog failures, TaskCompletionSource<(SocketPipe, OssuaryDuplexPipe)?> winner, SemaphoreSlim slots, Func<bool> onFailed, CancellationToken cancellationToken)
    {
        SocketPipe? pipe = null;
        bool won = false;
        try
        {
            pipe = new SocketPipe(socket);
            if (await ServerHandshake.AcceptAsync(pipe, setup, failures, cancellationToken) is not { } secure)
            {
                if (!winner.Task.IsCompleted && onFailed())
                {
                    winner.TrySetResult(null);
                }

                return;
            }

            won = winner.TrySetResult((pipe, secure));
            if (!won)
            {
                // Another client got there first (or --once ended with a refusal) as this handshake
                // succeeded. Its client counts itself established and may be sending: disposed as a
                // served session is, with a clean Disconnect, it took that for a normal end and
                // `connect` exited 0 with none of its data read. Disconnect (error) says it was not served.
                // Said directly, not as a failed handshake: that line's follow-up ("still waiting for a
                // file") is untrue once a sender is served, and only a handshake that succeeded in that
                // moment gets here, nothing a flood of strangers brings about.
                Console.Error.WriteLine($"ossuary: connection from {pipe.RemoteEndPoint?.ToString() ?? "?"} not served: another connection was served first; told the client with Disconnect (error)");
                await secure.Output.CompleteAsync(new OperationCanceledException("another connection was served first"));
                await secure.DisposeAsync();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Another client got there first, or the caller gave up: this one is closed unserved.
        }
        catch (Exception ex) when (ex is IOException or SocketException)
        {
            // The peer went away in a way the handshake does not report (a reset as its socket was set up).
        }
        catch (Exception ex)
        {
            // Neither the peer's failure (reported, or the socket errors above) nor a cancellation: a
            // bug of ours. Nobody awaits this task until the wait ends, and the next accept dropped it
            // from the list unobserved, so it ends the wait now with its cause. Should another client
            // have won already, the bug is said here, for the wait ends with that client.
            if (!winner.TrySetException(ex))
            {
                Console.Error.WriteLine($"ossuary: a handshake failed with an {UnexpectedError.Describe(ex)} (a bug in ossuary)");
            }
        }
        finally
        {
            if (!won)
            {
                if (pipe is null)
                {
                    socket.Dispose();
                }
                else
                {
                    await pipe.DisposeAsync();
                }
            }

            slots.Release();
        }
    }
}
