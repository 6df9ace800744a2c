using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// The test assembly's entry point (in place of the one Microsoft.NET.Test.Sdk generates, which does nothing):
/// scenarios a test runs in a child process (<c>dotnet Ossuary.Pipelines.Tests.dll scenario ...</c>) because they
/// change what holds for a whole process, such as a capped thread pool. The test host never calls it.
/// </summary>
public static class ChildScenarios
{
    public static int Main(string[] args) => args switch
    {
        ["capped-stream-reads", var cap] => CappedStreamReads(int.Parse(cap, System.Globalization.CultureInfo.InvariantCulture)),
        ["capped-stream-starved", var cap] => CappedStreamStarved(int.Parse(cap, System.Globalization.CultureInfo.InvariantCulture), 2),
        ["capped-stream-starved", var cap, var seconds] => CappedStreamStarved(
            int.Parse(cap, System.Globalization.CultureInfo.InvariantCulture), int.Parse(seconds, System.Globalization.CultureInfo.InvariantCulture)),
        _ => 2,
    };

    /// <summary>
    /// Caps the pool at <paramref name="cap"/> threads and blocks every one of them in a synchronous
    /// <see cref="OssuaryStream"/> read over loopback TCP (what the docs say not to do), then sends each its bytes:
    /// none could return, as the work that ends a read needs a pool thread. Exit 0 once every read has ended within
    /// 2 minutes, each with its bytes or with the <see cref="InvalidOperationException"/> that names the starved pool,
    /// at least one with the latter; 1 (with what happened) otherwise. The starvation limit is shortened to
    /// <paramref name="limitSeconds"/> (2 s from the test; by hand, one beyond the 2 minutes shows the hang it replaces).
    /// </summary>
    private static int CappedStreamStarved(int cap, int limitSeconds)
    {
        PoolBoundWait.StarvedLimit = TimeSpan.FromSeconds(limitSeconds);
        ThreadPool.SetMinThreads(2, 2);
        if (!ThreadPool.SetMaxThreads(cap, cap) || !ThreadPool.SetMinThreads(cap, cap))
        {
            Console.WriteLine($"the pool could not be capped at {cap}");
            return 1;
        }

        using var keys = new MutualKeys();
        var serverOptions = new OssuaryServerOptions();
        keys.ConfigureServer(serverOptions, TimeSpan.FromSeconds(60));
        var pairs = new List<(OssuaryStream Server, OssuaryStream Client)>();
        for (int i = 0; i < cap; i++)
        {
            (NetworkStream serverSide, NetworkStream clientSide) = OssuaryStreamTests.ConnectTcpPairAsync().GetAwaiter().GetResult();
            var pair = (Server: new OssuaryStream(serverSide), Client: new OssuaryStream(clientSide));
            pairs.Add(pair);
            Task.WhenAll(pair.Server.AuthenticateAsServerAsync(serverOptions), pair.Client.AuthenticateAsClientAsync(keys.ClientOptions())).GetAwaiter().GetResult();
        }

        using var started = new CountdownEvent(cap);
        using var done = new CountdownEvent(cap);
        var outcomes = new System.Collections.Concurrent.ConcurrentQueue<string>();
        foreach ((_, OssuaryStream client) in pairs)
        {
            ThreadPool.UnsafeQueueUserWorkItem(_ =>
            {
                started.Signal();
                try
                {
                    byte[] buffer = new byte[16];
                    outcomes.Enqueue(System.Text.Encoding.ASCII.GetString(buffer, 0, client.Read(buffer, 0, buffer.Length)));
                }
                catch (Exception ex)
                {
                    outcomes.Enqueue($"{ex.GetType().Name}: {ex.Message}");
                }

                done.Signal();
            }, null);
        }

        started.Wait(); // every pool thread now holds a read
        foreach ((OssuaryStream server, _) in pairs)
        {
            server.Write("ping"u8); // queued at once: sending it is the starved pool's work
        }

        bool all = done.Wait(TimeSpan.FromMinutes(2));
        Console.WriteLine($"{cap - done.CurrentCount} of {cap} reads ended: {string.Join(" | ", outcomes)}");
        if (!all)
        {
            return 1; // not disposed: disposal would block on the same pool; the process's end closes the sockets
        }

        foreach ((OssuaryStream server, OssuaryStream client) in pairs)
        {
            client.Dispose();
            server.Dispose();
        }

        bool named = outcomes.Any(o => o.StartsWith("InvalidOperationException:", StringComparison.Ordinal) && o.Contains("no free thread", StringComparison.Ordinal));
        return named && outcomes.All(o => o == "ping" || o.StartsWith("InvalidOperationException:", StringComparison.Ordinal)) ? 0 : 1;
    }

    /// <summary>
    /// Caps the pool at <paramref name="cap"/> threads, blocks all but one of them in a synchronous
    /// <see cref="OssuaryStream"/> read over loopback TCP, then sends each its bytes. Exit 0 once every read has
    /// returned them; 1 (with what happened) if they have not within 2 minutes. Driven from this process's main
    /// thread, which is not the pool's, and blocked on nothing else of the pool's.
    /// </summary>
    private static int CappedStreamReads(int cap)
    {
        ThreadPool.SetMinThreads(2, 2);
        if (!ThreadPool.SetMaxThreads(cap, cap))
        {
            Console.WriteLine($"the pool could not be capped at {cap}");
            return 1;
        }

        int readers = cap - 1;
        using var keys = new MutualKeys();
        var serverOptions = new OssuaryServerOptions();
        keys.ConfigureServer(serverOptions, TimeSpan.FromSeconds(60));
        var pairs = new List<(OssuaryStream Server, OssuaryStream Client)>();
        for (int i = 0; i < readers; i++)
        {
            (NetworkStream serverSide, NetworkStream clientSide) = OssuaryStreamTests.ConnectTcpPairAsync().GetAwaiter().GetResult();
            var pair = (Server: new OssuaryStream(serverSide), Client: new OssuaryStream(clientSide));
            pairs.Add(pair);
            Task.WhenAll(pair.Server.AuthenticateAsServerAsync(serverOptions), pair.Client.AuthenticateAsClientAsync(keys.ClientOptions())).GetAwaiter().GetResult();
        }

        using var started = new CountdownEvent(readers);
        using var done = new CountdownEvent(readers);
        var received = new System.Collections.Concurrent.ConcurrentQueue<string>();
        foreach ((_, OssuaryStream client) in pairs)
        {
            ThreadPool.UnsafeQueueUserWorkItem(_ =>
            {
                started.Signal();
                try
                {
                    byte[] buffer = new byte[16];
                    received.Enqueue(System.Text.Encoding.ASCII.GetString(buffer, 0, client.Read(buffer, 0, buffer.Length)));
                }
                catch (Exception ex)
                {
                    received.Enqueue(ex.ToString());
                }

                done.Signal();
            }, null);
        }

        started.Wait(); // every pool thread but one now holds a read
        foreach ((OssuaryStream server, _) in pairs)
        {
            server.Write("ping"u8);
        }

        bool all = done.Wait(TimeSpan.FromMinutes(2));
        Console.WriteLine($"{readers - done.CurrentCount} of {readers} reads completed: {string.Join(", ", received)}");
        if (!all)
        {
            return 1; // not disposed: disposal would block on the same pool; the process's end closes the sockets
        }

        foreach ((OssuaryStream server, OssuaryStream client) in pairs)
        {
            client.Dispose();
            server.Dispose();
        }

        return received.All(r => r == "ping") ? 0 : 1;
    }
}
