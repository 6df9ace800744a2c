using System.IO.Pipelines;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Cli.Net;

/// <summary>
/// stdin → peer and peer → stdout. Ossuary's Disconnect ends both directions, so after stdin
/// ends we keep receiving for a grace period (netcat's <c>-q</c>) before closing.
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

    public static async Task RunAsync(OssuaryDuplexPipe secure, TimeSpan wait, CancellationToken cancellationToken)
    {
        Stream stdout = Console.OpenStandardOutput();
        using var stopSending = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task fromPeer = PlaintextPump.ToStreamAsync(secure.Input, stdout, cancellationToken);
        Task toPeer = PlaintextPump.FromPipeAsync(Stdin.Value, secure.Output, stopSending.Token);
        if (await Task.WhenAny(fromPeer, toPeer) == toPeer)
        {
            await toPeer;
            await Task.WhenAny(fromPeer, Task.Delay(wait, cancellationToken));
        }
        else
        {
            // The peer closed first: stop reading stdin so that the next connection gets what follows.
            stopSending.Cancel();
            try
            {
                await toPeer;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }
        }

        await secure.Output.CompleteAsync(); // Disconnect (clean)
        if (fromPeer.IsCompleted)
        {
            await fromPeer; // surfaces the reason if the peer failed rather than closed
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
}
