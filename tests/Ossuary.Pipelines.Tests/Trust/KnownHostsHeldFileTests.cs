using System.Net;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Trust;

/// <summary>Trust callbacks that check a known-hosts file while another writer holds it.</summary>
public sealed class KnownHostsHeldFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-known-hosts-held-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task ClientsCheckingAHeldFileHoldNoThreadWhileTheyWaitAndAreTrustedOnceItIsLetGo()
    {
        // A client that connects to many servers checks one known-hosts file in its trust callback.
        // Check waited for a writer that held the file (a --tofu, a known-hosts set) by sleeping on the
        // callback's thread-pool thread, up to LockWait (10 s) each: with more connections at once than
        // the pool had threads, the rest of the process waited too. CheckAsync's wait holds no thread,
        // so every check here is still waiting when its call returns, and the pool runs other work.
        const int Clients = 16;
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        // The handshakes wait for the file as long as the test holds it: no timeout of theirs may end them
        // first on a loaded machine (the server's 3 s step waits for the client's last packet meanwhile).
        await using OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(clientKey.PublicKey);
            o.HandshakeTimeout = o.HandshakeStepTimeout = TestTimeout.Default * 2;
        });
        string path = Path.Combine(_directory, "known_hosts");
        File.WriteAllText(path, $"127.0.0.1:{server.EndPoint.Port} {serverKey.PublicKey}\n");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);
        int waiting = 0;
        var allWaiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var options = new OssuaryClientOptions
        {
            Identity = clientKey,
            HandshakeTimeout = TestTimeout.Default * 2,
            HandshakeStepTimeout = TestTimeout.Default * 2,
            TrustServerAtEndPoint = async (context, cancellationToken) =>
            {
                var endPoint = (IPEndPoint)context.EndPoint!;
                ValueTask<KnownHostStatus> check = hosts.CheckAsync(endPoint.Address.ToString(), endPoint.Port, context.ServerKey, cancellationToken);
                if (!check.IsCompleted && Interlocked.Increment(ref waiting) == Clients)
                {
                    allWaiting.SetResult();
                }

                return await check == KnownHostStatus.Trusted;
            },
        };

        Task<OssuaryClientConnection>[] connecting;
        using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None)) // another writer holds it
        {
            connecting = [.. Enumerable.Range(0, Clients).Select(_ => OssuaryClient.ConnectAsync(server.EndPoint, options))];
            await allWaiting.Task.Within();
            await Task.Run(() => { }).Within(); // the pool still runs other work
        }

        foreach (Task<OssuaryClientConnection> connect in connecting)
        {
            await using OssuaryClientConnection connection = await connect.Within();
            await Echo.RoundTripAsync(connection);
        }
    }

    [Fact]
    public async Task CheckAsyncOnAHeldFileEndsItsWaitWithTheToken()
    {
        // The handshake's token bounds the trust callback: a check that waited out LockWait instead
        // held the handshake past its timeout, and then failed as an I/O error.
        string path = Path.Combine(_directory, "known_hosts");
        OssuaryPublicKey key = OssuaryPublicKey.Parse(new string('a', 64));
        File.WriteAllText(path, $"example.org:7000 {key}\n");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);
        using var cancel = new CancellationTokenSource();

        using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
            ValueTask<KnownHostStatus> check = hosts.CheckAsync("example.org", 7000, key, cancel.Token);
            Assert.False(check.IsCompleted);
            await cancel.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => check.Within());
        }

        Assert.Equal(KnownHostStatus.Trusted, await hosts.CheckAsync("example.org", 7000, key).Within());
    }

    [Fact]
    public async Task AddAsyncOnAHeldFileWaitsWithoutAThreadEndsWithTheTokenAndThenRecordsOneLine()
    {
        // A client that trusts on first use records the key in its trust callback. Add waited for a writer
        // that held the file by sleeping on the callback's thread-pool thread, up to LockWait (10 s) each,
        // as Check did. AddAsync's wait holds no thread: every add here is still waiting when its call
        // returns, the pool runs other work, one is ended by its token, and the rest record one line.
        const int Adders = 16;
        string path = Path.Combine(_directory, "known_hosts");
        File.WriteAllText(path, $"other.example {new string('b', 64)}\n");
        OssuaryPublicKey key = OssuaryPublicKey.Parse(new string('a', 64));
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);
        using var cancel = new CancellationTokenSource();

        ValueTask cancelled;
        ValueTask[] adding;
        using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None)) // another writer holds it
        {
            cancelled = hosts.AddAsync("example.org", 7000, key, cancellationToken: cancel.Token);
            adding = [.. Enumerable.Range(0, Adders).Select(_ => hosts.AddAsync("example.org", 7000, key))];
            Assert.False(cancelled.IsCompleted);
            Assert.All(adding, add => Assert.False(add.IsCompleted));
            await Task.Run(() => { }).Within(); // the pool still runs other work
            await cancel.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.AsTask().Within());
        }

        foreach (ValueTask add in adding)
        {
            await add.AsTask().Within();
        }

        Assert.Equal(KnownHostStatus.Trusted, await hosts.CheckAsync("example.org", 7000, key).Within());
        Assert.Single(File.ReadAllLines(path), line => line.StartsWith("example.org:7000 ", StringComparison.Ordinal));
        Assert.Equal(2, hosts.Count);
    }
}
