namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// How many of a server's connections are in their handshake, bounded by its plan's <c>MaxPendingHandshakes</c>.
/// Kept by the plan source, not the plan: an options reload replaces the plan while handshakes that took the
/// previous one are still under way, and they still count.
/// </summary>
internal sealed class PendingHandshakes
{
    private int _count;

    /// <summary>Connections in their handshake now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Counts one more connection in its handshake, unless <paramref name="limit"/> are already: then false, and nothing is counted.</summary>
    public bool TryEnter(int limit)
    {
        // Compared before it is raised: an increment undone on refusal would, under a flood, refuse an
        // honest connection that came while the count stood one above the limit for a refused one.
        int count = Volatile.Read(ref _count);
        while (count < limit)
        {
            int seen = Interlocked.CompareExchange(ref _count, count + 1, count);
            if (seen == count)
            {
                return true;
            }

            count = seen;
        }

        return false;
    }

    /// <summary>One connection's handshake is over, however it ended.</summary>
    public void Exit() => Interlocked.Decrement(ref _count);
}
