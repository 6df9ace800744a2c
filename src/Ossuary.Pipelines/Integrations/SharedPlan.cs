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

    // The plan whose identity this one uses without owning it (see Sharing), held until this one is freed.
    private readonly SharedPlan? _identityOwner;

    // An identity generated for the server (it had none configured), freed as a key file's is.
    private readonly OssuaryIdentity? _generated;

    /// <param name="plan">The plan.</param>
    /// <param name="telemetry">Where its connections report.</param>
    /// <param name="generated">The identity generated for this plan, which it owns.</param>
    public SharedPlan(HandshakePlan plan, ConnectionTelemetry telemetry, OssuaryIdentity? generated = null)
    {
        Plan = plan;
        Telemetry = telemetry;
        _generated = generated;
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
    public SharedPlan WithAdmittedClients(IEnumerable<OssuaryPublicKey> optionKeys, IEnumerable<OssuaryPublicKey> fileKeys) =>
        Sharing(Plan.WithAdmittedClients(optionKeys, fileKeys), Telemetry, this);

    /// <summary>
    /// A plan that presents the identity <paramref name="identityOwner"/> owns (or borrows), which stays held
    /// until the new plan is freed. Call while <paramref name="identityOwner"/> is held.
    /// </summary>
    public static SharedPlan Sharing(HandshakePlan plan, ConnectionTelemetry telemetry, SharedPlan identityOwner)
    {
        // The owner itself, not the plan that borrows from it: a chain of plans, one per change, would keep every one of them alive.
        SharedPlan owner = identityOwner._identityOwner ?? identityOwner;
        if (!owner.TryHold())
        {
            throw new InvalidOperationException("The plan was freed while still held."); // the caller's hold keeps the owner's
        }

        return new SharedPlan(plan, telemetry, owner);
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
                _generated?.Dispose();
            }
        }
    }
}
