using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

/// <summary>
/// <see cref="OssuarySession.AddAuthorizedKey"/> called once per key of a long allow-list (a
/// server loading its clients one by one) must cost in proportion to the list, not to its square:
/// copying the whole list on every call made 5,000 keys copy about 100 MB of references.
/// Measured in bytes this thread allocated, which do not depend on how busy the machine is.
/// </summary>
public class AddAuthorizedKeyGrowthTests
{
    private const int KeyCount = 5_000;

    [Fact]
    public void AddingALongAllowListOneKeyAtATimeDoesNotCopyItEachTime()
    {
        using var serverIdentity = OssuaryIdentity.Generate();
        using var clientIdentity = OssuaryIdentity.Generate();
        OssuaryPublicKey[] others = [.. Enumerable.Range(0, KeyCount).Select(_ => OssuaryIdentity.Generate()).Select(identity =>
        {
            using (identity)
            {
                return identity.PublicKey;
            }
        })];
        using var server = new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.AuthenticatedServer, Identity = serverIdentity });

        long before = GC.GetAllocatedBytesForCurrentThread();
        foreach (OssuaryPublicKey key in others)
        {
            server.AddAuthorizedKey(key);
        }

        server.AddAuthorizedKey(clientIdentity.PublicKey); // the last of the list
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // Growing by doubling copies fewer than two references per key: under 100 KB here.
        Assert.True(allocated < 1_000_000, $"adding {KeyCount + 1} keys one at a time allocated {allocated:N0} bytes");

        // And the list still works: the key added last admits its client.
        var clientOptions = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = clientIdentity };
        clientOptions.AuthorizedKeys.Add(serverIdentity.PublicKey);
        using var client = new OssuarySession(clientOptions);
        var pump = new SessionPump(client, server);
        pump.Run();
        Assert.True(server.IsEstablished);
        Assert.Equal(clientIdentity.PublicKey, server.RemotePublicKey);
    }
}
