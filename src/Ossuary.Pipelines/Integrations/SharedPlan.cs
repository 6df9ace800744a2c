using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// A plan that many handshakes share (a listener's, a connection factory's), counted by who holds
/// it: its owner until it lets go (the plan was replaced, or the owner disposed), and each
/// handshake that took it until that handshake ends. The last to let go frees the identity the
/// plan read from its key file, exactly once (a plan that shares another's identity lets go of
/// that plan instead). Freed when replaced, the key would go from under
/// handshakes still about to sign with it; left to the finalizer, every replaced key's seed
/// stayed in memory until a collection came.
/// </summary>
internal sealed class SharedPlan
{
    // The owner's hold is the first. Zero is final: the identity is freed, and nobody may take the plan again.
    private int _holds = 1;

    // The plan whose identity this one uses without owning it (see WithAdmittedClients), held until this one is freed.
    private readonly SharedPlan? _identityOwner;

    public SharedPlan(HandshakePlan plan, ConnectionTelemetry telemetry)
    {
        Plan = plan;
        Telemetry = telemetry;
    }

    private SharedPlan(HandshakePlan plan, ConnectionTelemetry telemetry, SharedPlan identityOwner)
        : this(plan, telemetry)
    {
        _identityOwner = identityOwner;
    }

    public HandshakePlan Plan { get; }

    public ConnectionTelemetry Telemetry { get; }

    /// <summary>Takes a hold for one handshake; false once the last hold has gone (see <see cref="CurrentPlan.Hold"/>).</summary>
    public bool TryHold()
    {
        int holds = Volatile.Read(ref _holds);
        while (holds > 0)
        {
            int seen = Interlocked.CompareExchange(ref _holds, holds + 1, holds);
            if (seen == holds)
            {
                return true;
            }

            holds = seen;
        }

        return false;
    }

    /// <summary>
    /// A plan with another allow-list and this plan's identity, which is not read again: an
    /// authorized-keys file's change must not wait for (or fail with) the identity key file. The
    /// identity's owner stays held until the new plan is freed. Call while holding this plan.
    /// </summary>
    public SharedPlan WithAdmittedClients(IEnumerable<OssuaryPublicKey> optionKeys, IEnumerable<OssuaryPublicKey> fileKeys)
    {
        // The owner, not this plan: a chain of plans, one per change, would keep every one of them alive.
        SharedPlan owner = _identityOwner ?? this;
        if (!owner.TryHold())
        {
            throw new InvalidOperationException("The plan was freed while still held."); // the caller's hold keeps the owner's
        }

        return new SharedPlan(Plan.WithAdmittedClients(optionKeys, fileKeys), Telemetry, owner);
    }

    /// <summary>Gives back one hold: a handshake's once it has ended, however it ended, or the owner's.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _holds) == 0)
        {
            if (_identityOwner is { } owner)
            {
                owner.Release(); // the identity is the owner's to free, once nobody uses it
            }
            else
            {
                Plan.ReleaseOwnIdentity();
            }
        }
    }
}
