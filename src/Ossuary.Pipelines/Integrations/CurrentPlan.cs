namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// The <see cref="SharedPlan"/> new handshakes take, replaced whole when the options change. The
/// owner's hold on a plan ends when the next one replaces it or when this is closed; a handshake
/// takes its own hold before it reads anything of the plan, so no handshake signs with a freed key.
/// </summary>
internal sealed class CurrentPlan
{
    private readonly Lock _lock = new();
    private volatile SharedPlan _plan;
    private bool _closed;

    public CurrentPlan(SharedPlan first) => _plan = first;

    /// <summary>The plan in force, held for one handshake (the caller releases it when the handshake is over); null once closed.</summary>
    public SharedPlan? Hold()
    {
        while (true)
        {
            SharedPlan plan = _plan;
            if (plan.TryHold())
            {
                return plan;
            }

            // Its last hold went meanwhile. Replace publishes the next plan before it lets go of the
            // previous one, so if the plan in force is still this one, we were closed.
            if (ReferenceEquals(plan, _plan))
            {
                return null;
            }
        }
    }

    /// <summary>
    /// The plan in force, without a hold: for its allow-list only, which a plan replaced (or closed) meanwhile
    /// still holds unchanged. Never for its identity, which goes once its last hold does.
    /// </summary>
    public Transport.HandshakePlan InForce => _plan.Plan;

    /// <summary>Puts <paramref name="next"/> in force and lets go of the previous plan (freed once its handshakes are over).</summary>
    public void Replace(SharedPlan next)
    {
        SharedPlan previous;
        lock (_lock)
        {
            if (_closed)
            {
                previous = next; // a reload that raced the owner's disposal: nobody will take it
            }
            else
            {
                previous = _plan;
                _plan = next;
            }
        }

        previous.Release();
    }

    /// <summary>Lets go of the plan in force; no handshake can take it after this.</summary>
    public void Close()
    {
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
        }

        _plan.Release();
    }
}
