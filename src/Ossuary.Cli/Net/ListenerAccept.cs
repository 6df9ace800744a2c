using System.Net.Sockets;

namespace Ossuary.Cli.Net;

/// <summary>
/// The accept of the tool's servers, through the failures that a flood of connections causes: they
/// pass once connections end, so the server waits instead of exiting and serving nobody again. (The
/// servers hold fewer connections than descriptors, <see cref="ConnectionBudget"/>: this is for
/// descriptors that the rest of the machine or process took.)
/// </summary>
internal static class ListenerAccept
{
    // How long to wait before trying again when no descriptor was left.
    private static readonly TimeSpan Retry = TimeSpan.FromMilliseconds(100);

    private static readonly OncePerMinute OutOfDescriptors = new();

    /// <summary>The next connection.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="SocketException">The listener failed for another reason than those above.</exception>
    public static async Task<Socket> NextAsync(Socket listener, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                return await listener.AcceptAsync(cancellationToken);
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                // The client went away while it waited in the backlog: nothing to serve.
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
            {
                OutOfDescriptors.Say($"ossuary: cannot accept more connections for now ({ex.Message}); waiting for some to end (said at most once a minute)");
                await Task.Delay(Retry, cancellationToken);
            }
        }
    }
}
