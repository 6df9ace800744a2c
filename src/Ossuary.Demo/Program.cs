// Ossuary.Demo: a server and a client in one process, over a real loopback TCP socket, each
// driving an OssuarySession directly. Part 1: mutual authentication with allow-lists.
// Part 2: trust on first use against an unauthenticated server. Exit code 0 on success, 1 on
// any failure; a 30-second budget guarantees it never hangs.
using Ossuary.Demo;
using Ossuary.Pipelines;

using var budget = new CancellationTokenSource(TimeSpan.FromSeconds(30));
try
{
    await AuthenticatedPart.RunAsync(budget.Token);
    Console.WriteLine();
    await TrustOnFirstUsePart.RunAsync(budget.Token);
    Console.WriteLine();
    Console.WriteLine("done.");
    return 0;
}
catch (OperationCanceledException) when (budget.IsCancellationRequested)
{
    Console.Error.WriteLine("error: the demo did not finish within 30 seconds.");
    return 1;
}
catch (Exception e)
{
    string reason = e is OssuaryException ossuary ? $" ({ossuary.Reason})" : "";
    Console.Error.WriteLine($"error: {e.GetType().Name}{reason}: {e.Message.ReplaceLineEndings(" ")}");
    return 1;
}

/// <summary>The demo's assertions: a failed one ends it with exit code 1.</summary>
internal static class Check
{
    public static void That(bool condition, string failure)
    {
        if (!condition)
        {
            throw new InvalidOperationException(failure);
        }
    }
}
