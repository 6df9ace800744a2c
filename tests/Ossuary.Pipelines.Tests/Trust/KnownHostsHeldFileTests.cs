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
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task ClientsCheckingAFileAnotherUserHoldsLockedAreTrustedAllTheSame()
    {
        // The queries took a shared advisory lock (flock) to read the file, to wait out a writer appending
        // to it. A lock needs no permission but to open the file, and a known-hosts file is often readable
        // by others (0644 in /etc/ossuary, a shared configuration mount): any of them could hold
        // `flock -x FILE sleep infinity`, and every check waited LockWait (10 s) and then failed as an I/O
        // error, so the client could connect to no server for as long as that user liked. Writers now
        // replace the file whole (a new file renamed over it), so readers take no lock.
        const int Clients = 4;
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(clientKey.PublicKey);
        });
        File.SetUnixFileMode(_directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        string path = Path.Combine(_directory, "known_hosts");
        File.WriteAllText(path, $"127.0.0.1:{server.EndPoint.Port} {serverKey.PublicKey}\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);
        var options = new OssuaryClientOptions
        {
            Identity = clientKey,
            TrustServerAtEndPoint = async (context, cancellationToken) =>
            {
                var endPoint = (IPEndPoint)context.EndPoint!;
                return await hosts.CheckAsync(endPoint.Address.ToString(), endPoint.Port, context.ServerKey, cancellationToken) == KnownHostStatus.Trusted;
            },
        };

        using (await ForeignLock.TakeAsync(path))
        {
            Assert.Equal(KnownHostStatus.Trusted, hosts.Check("127.0.0.1", server.EndPoint.Port, serverKey.PublicKey));
            Assert.Equal(1, OssuaryKnownHosts.Load(path).Count);
            foreach (Task<OssuaryClientConnection> connect in Enumerable.Range(0, Clients).Select(_ => OssuaryClient.ConnectAsync(server.EndPoint, options)).ToArray())
            {
                await using OssuaryClientConnection connection = await connect.Within();
                await Echo.RoundTripAsync(connection);
            }
        }
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task AnAddOnAFileAnotherUserHoldsLockedFailsAfterLockWaitSayingSoAndRecordsNothing()
    {
        // A writer must hold the file, so another user's `flock -x` on a shared known-hosts file stalls a client
        // trusting on first use for LockWait. It then failed with .NET's "being used by another process", as if
        // for a moment, which said neither that it had waited nor that anyone who may open the file can hold it.
        // The key must not be trusted unrecorded: the failure is thrown, and the file holds no line for it.
        File.SetUnixFileMode(_directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        string path = Path.Combine(_directory, "known_hosts");
        string before = $"other.example {new string('b', 64)}\n";
        File.WriteAllText(path, before);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        OssuaryPublicKey key = OssuaryPublicKey.Parse(new string('a', 64));
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        using (await ForeignLock.TakeAsync(path))
        {
            IOException held = await Assert.ThrowsAsync<IOException>(() => hosts.AddAsync("example.org", 7000, key).AsTask().Within());
            Assert.Equal(
                $"'{path}': another process held the known-hosts file locked for longer than 10 s (another writer, or any process that may open the file and holds a lock on it: flock); giving up.",
                held.Message);
            Assert.Equal(11, held.HResult); // EWOULDBLOCK, as .NET's refusal gives it
            Assert.Equal(KnownHostStatus.Unknown, hosts.Check("example.org", 7000, key));
            using var reader = new StreamReader(UnlockedOpen.Read(path, "known-hosts")); // as the lock is still held
            Assert.Equal(before, await reader.ReadToEndAsync().Within());
        }
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // where a writer's share mode keeps readers out until it is done
    public async Task ACheckWhileAWriterHoldsTheFileIsAnsweredAtOnceFromTheFileAsItWas()
    {
        // A writer holds the file from its re-read until the new file has the name; a check meanwhile
        // waited for it (up to LockWait). The old file is whole until the rename, so it answers now.
        string path = Path.Combine(_directory, "known_hosts");
        OssuaryPublicKey key = OssuaryPublicKey.Parse(new string('a', 64));
        File.WriteAllText(path, $"example.org:7000 {key}\n");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None)) // another writer holds it
        {
            ValueTask<KnownHostStatus> check = hosts.CheckAsync("example.org", 7000, key);
            Assert.True(check.IsCompleted);
            Assert.Equal(KnownHostStatus.Trusted, await check);
            Assert.Equal(KnownHostStatus.Trusted, hosts.Check("example.org", 7000, key));
        }
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
