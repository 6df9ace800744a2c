using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Threads;

/// <summary>
/// One <see cref="OssuaryKnownHosts"/> is what a client's trust callback consults, and callbacks run
/// on several connections at once: the set is safe to share. It held its entries in a plain list
/// that Add cleared and refilled while another thread's Find enumerated it, which threw "Collection
/// was modified" or answered Unknown for a host already trusted.
/// </summary>
public sealed class SharedKnownHostsTests : IDisposable
{
    private const int Threads = 4;
    private const int HostsPerThread = 150;

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-shared-known-hosts-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void ThreadsSharingOneFileBackedSetEachFindEveryKeyAnyOfThemAdded() =>
        AddAndFindFromSeveralThreads(OssuaryKnownHosts.Load(Path.Combine(_directory, "known_hosts")), HostsPerThread / 5);

    [Fact]
    public void ThreadsSharingOneInMemorySetEachFindEveryKeyAnyOfThemAdded() =>
        AddAndFindFromSeveralThreads(OssuaryKnownHosts.Parse(new StringReader("")), HostsPerThread);

    private static void AddAndFindFromSeveralThreads(OssuaryKnownHosts hosts, int perThread)
    {
        OssuaryPublicKey[][] keys = [.. Enumerable.Range(0, Threads).Select(_ => Enumerable.Range(0, perThread).Select(_ => NewKey()).ToArray())];
        using var start = new Barrier(Threads);
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        Thread[] threads = [.. Enumerable.Range(0, Threads).Select(t => new Thread(() => Run(t)))];
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            Assert.True(thread.Join(TimeSpan.FromMinutes(2)));
        }

        Assert.True(failures.IsEmpty, $"{failures.Count} threads failed; the first: {failures.FirstOrDefault()}");
        Assert.Equal(Threads * perThread, hosts.Count);
        if (hosts.Path is { } path)
        {
            Assert.Equal(Threads * perThread, OssuaryKnownHosts.Load(path).Count); // every Add reached the file, once
        }

        void Run(int thread)
        {
            try
            {
                start.SignalAndWait();
                for (int i = 0; i < perThread; i++)
                {
                    string host = $"h{thread}-{i}.example";
                    hosts.Add(host, 7000, keys[thread][i]);

                    // What this thread added stays found while the others add: and what they added is never a "changed" key.
                    for (int j = 0; j <= i; j++)
                    {
                        Assert.Equal(KnownHostStatus.Trusted, hosts.Check($"h{thread}-{j}.example", 7000, keys[thread][j]));
                    }

                    Assert.NotEqual(KnownHostStatus.Changed, hosts.Check($"h{(thread + 1) % Threads}-{i}.example", 7000, keys[(thread + 1) % Threads][i]));
                }
            }
            catch (Exception ex)
            {
                failures.Enqueue(ex);
            }
        }
    }

    private static OssuaryPublicKey NewKey()
    {
        using OssuaryIdentity identity = OssuaryIdentity.Generate();
        return identity.PublicKey;
    }
}
