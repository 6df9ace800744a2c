using Ossuary.Pipelines;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Cli.Net;

/// <summary>
/// stdin → peer and peer → stdout. Ossuary's Disconnect ends both directions, so after stdin
/// ends we keep receiving for a grace period (netcat's <c>-q</c>) before closing.
/// </summary>
internal static class Netcat
{
    public static async Task RunAsync(OssuaryDuplexPipe secure, TimeSpan wait, CancellationToken cancellationToken)
    {
        Stream stdout = Console.OpenStandardOutput();
        Task fromPeer = PlaintextPump.ToStreamAsync(secure.Input, stdout, cancellationToken);
        Task toPeer = PlaintextPump.FromStreamAsync(Console.OpenStandardInput(), secure.Output, cancellationToken);
        if (await Task.WhenAny(fromPeer, toPeer) == toPeer)
        {
            await toPeer;
            await Task.WhenAny(fromPeer, Task.Delay(wait, cancellationToken));
        }

        await secure.Output.CompleteAsync(); // Disconnect (clean)
        if (fromPeer.IsCompleted)
        {
            await fromPeer; // surfaces the reason if the peer failed rather than closed
        }
    }
}
