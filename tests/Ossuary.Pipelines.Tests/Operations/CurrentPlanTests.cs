using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// The holds on a shared plan, without a network: a replaced plan's key-file identity lives exactly
/// as long as the handshakes that took it, and nothing can take a plan once it is let go.
/// </summary>
public sealed class CurrentPlanTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ossuary-current-plan-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void AReplacedPlansKeyIsZeroedWhenTheLastHandshakeHoldingItLetsGo()
    {
        using var oldKey = new KeyFileSeed(_folder, "old.key");
        using var newKey = new KeyFileSeed(_folder, "new.key");
        var current = new CurrentPlan(Shared(oldKey));
        SharedPlan first = current.Hold()!;
        SharedPlan second = current.Hold()!;

        SharedPlan replacement = Shared(newKey);
        current.Replace(replacement);
        first.Release();
        Assert.NotEqual(0, oldKey.CopiesInMemory());
        second.Release();

        Assert.Equal(0, oldKey.CopiesInMemory());
        Assert.False(first.TryHold()); // let go for good: a late comer gets the plan in force instead
        SharedPlan late = current.Hold()!;
        Assert.Same(replacement, late);
        late.Release();
        Assert.NotEqual(0, newKey.CopiesInMemory());
    }

    [Fact]
    public void NothingIsHeldAfterCloseAndAReplacementRacingItIsZeroedAtOnce()
    {
        using var key = new KeyFileSeed(_folder, "first.key");
        using var racing = new KeyFileSeed(_folder, "racing.key");
        var current = new CurrentPlan(Shared(key));

        current.Close();
        current.Close(); // the owner's hold goes once
        current.Replace(Shared(racing));

        Assert.Null(current.Hold());
        Assert.Equal(0, key.CopiesInMemory());
        Assert.Equal(0, racing.CopiesInMemory());
    }

    [Fact]
    public void AKeyReusedByPlansWithOtherAllowListsIsZeroedOnceTheLastOfThemLetsGo()
    {
        using var key = new KeyFileSeed(_folder, "server.key");
        using var client = OssuaryIdentity.Generate();
        var current = new CurrentPlan(Shared(key));
        SharedPlan handshake = current.Hold()!;

        // Two authorized-keys changes: each plan keeps the identity the first one read.
        SharedPlan held = current.Hold()!;
        current.Replace(held.WithAdmittedClients([], [client.PublicKey]));
        held.Release();
        held = current.Hold()!;
        current.Replace(held.WithAdmittedClients([], []));
        held.Release();

        SharedPlan latest = current.Hold()!;
        Assert.Equal(key.PublicKey, latest.Plan.LocalPublicKey);
        Assert.Equal(0, latest.Plan.AdmittedKeyCount);
        latest.Release();
        handshake.Release(); // the first plan's last handshake: the later plans still sign with the key
        Assert.NotEqual(0, key.CopiesInMemory());

        current.Close();
        Assert.Equal(0, key.CopiesInMemory());
    }

    private static SharedPlan Shared(KeyFileSeed key)
    {
        HandshakePlan plan = HandshakePlan.ForClient(new OssuaryClientOptions { IdentityKeyFile = key.Path, TrustedServerKeys = { StrangerKey.Value } });
        return new SharedPlan(plan, ConnectionTelemetry.For(plan));
    }
}
