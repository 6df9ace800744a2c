using System.Buffers;
using System.Diagnostics;
using Ossuary.Pipelines.Loopback.Targets;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Loopback.Measurements;

/// <summary>
/// The crypto-only bound on Ossuary handshakes: both sides' <see cref="OssuarySession"/>s, with
/// the same keys and roles as the socket targets, exchange their packets in memory. No sockets,
/// no pipes, no tasks: what is left is key generation, agreement, signatures and the cipher set-up.
/// </summary>
internal static class CryptoBoundMeasurement
{
    /// <param name="PerSecond">Handshakes (both sides) per second.</param>
    /// <param name="CpuMicroseconds">Process CPU time per handshake (both sides): the cost, whatever the machine's load.</param>
    public sealed record Result(double PerSecond, double CpuMicroseconds);

    /// <summary>Handshakes per second on <paramref name="threads"/> threads, each running pairs back to back.</summary>
    public static Result Run(OssuaryKeys keys, int threads, double seconds)
    {
        RunOn(keys, 1, Math.Min(0.3, seconds / 2)); // warm-up
        return RunOn(keys, threads, seconds);
    }

    private static Result RunOn(OssuaryKeys keys, int threads, double seconds)
    {
        long count = 0;
        var cpu = CpuClock.Start();
        var clock = Stopwatch.StartNew();
        var workers = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            // At least one handshake a thread, for the same reason as the socket rounds: a thread
            // started after the round's time is up would leave a round of none.
            workers[i] = new Thread(() =>
            {
                var pair = new InMemoryPair(keys);
                long done = 0;
                do
                {
                    pair.Handshake();
                    done++;
                }
                while (clock.Elapsed.TotalSeconds < seconds);

                Interlocked.Add(ref count, done);
            });
            workers[i].Start();
        }

        foreach (Thread worker in workers)
        {
            worker.Join();
        }

        return new Result(count / clock.Elapsed.TotalSeconds, cpu.CoresBusy * cpu.Elapsed.TotalMicroseconds / count);
    }

    /// <summary>One client and one server session, created afresh for every handshake, as a connection would.</summary>
    private sealed class InMemoryPair
    {
        private readonly OssuarySessionOptions _client;
        private readonly OssuarySessionOptions _server;
        private readonly HashSet<OssuaryPublicKey> _admitted;
        private readonly ArrayBufferWriter<byte> _wire = new(512);
        private readonly ArrayBufferWriter<byte> _plaintext = new(16);

        public InMemoryPair(OssuaryKeys keys)
        {
            _client = keys.ClientSessionOptions();
            _server = keys.ServerSessionOptions();
            _admitted = [keys.Client.PublicKey];
        }

        public void Handshake()
        {
            using var client = new OssuarySession(_client);
            using var server = new OssuarySession(_server);
            InMemoryWire.Establish(client, server, _wire, _plaintext);

            if (!_admitted.Contains(server.RemotePublicKey!))
            {
                throw new InvalidOperationException("the server did not see the client's key");
            }
        }
    }
}
