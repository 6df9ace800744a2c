using System.Net;
using System.Reflection;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// <see cref="OssuaryClientConnection.ConnectionId"/> is made on first use; two threads asking first at once
/// (a log scope and the application, say) must get the same id. Each round puts the field back to its
/// state before first use (by reflection: a connection is first used only once) and lets two threads race.
/// </summary>
public class ClientConnectionFirstUseTests
{
    private const int Rounds = 20_000;

    [Fact]
    public async Task TwoThreadsAskingForTheIdFirstGetOneId()
    {
        await using var pair = await ConnectedClient.StartAsync();
        FieldInfo field = typeof(OssuaryClientConnection).GetField("_connectionId", BindingFlags.Instance | BindingFlags.NonPublic)!;

        int differing = Race(pair.Client, field, client => client.ConnectionId, (a, b) => a == b);

        Assert.Equal(0, differing);
    }

    /// <summary>Rounds in which what the two threads got does not <paramref name="agree"/>.</summary>
    /// <remarks>
    /// The threads spin rather than wait on a barrier: a barrier's waiter wakes microseconds after the last
    /// one leaves it, longer than a first use takes, so they seldom met.
    /// </remarks>
    private static int Race<T>(OssuaryClientConnection client, FieldInfo field, Func<OssuaryClientConnection, T> firstUse, Func<T, T, bool> agree)
    {
        int started = 0;
        int finished = 0;
        T other = default!;
        var racer = new Thread(() =>
        {
            for (int round = 1; round <= Rounds; round++)
            {
                while (Volatile.Read(ref started) != round)
                {
                    Thread.SpinWait(1);
                }

                other = firstUse(client);
                Volatile.Write(ref finished, round);
            }
        });
        racer.Start();
        int disagreements = 0;
        for (int round = 1; round <= Rounds; round++)
        {
            field.SetValue(client, null);
            Volatile.Write(ref started, round);
            T mine = firstUse(client);
            while (Volatile.Read(ref finished) != round)
            {
                Thread.SpinWait(1);
            }

            if (!agree(mine, other))
            {
                disagreements++;
            }
        }

        racer.Join();
        return disagreements;
    }

    /// <summary>A Kestrel + <c>UseOssuary</c> echo server and one client connected to it.</summary>
    private sealed class ConnectedClient : IAsyncDisposable
    {
        private readonly MutualKeys _keys;
        private readonly KestrelHost _host;

        private ConnectedClient(MutualKeys keys, KestrelHost host, OssuaryClientConnection client)
        {
            _keys = keys;
            _host = host;
            Client = client;
        }

        public OssuaryClientConnection Client { get; }

        public static async Task<ConnectedClient> StartAsync()
        {
            var keys = new MutualKeys();
            KestrelHost host = await KestrelHost.StartOssuaryAsync(keys.Server, keys.Client.PublicKey, connection => PipeReads.ReadToEndAsync(connection.Transport.Input));
            OssuaryClientConnection client = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, host.Port()), keys.ClientOptions()).Within();
            return new ConnectedClient(keys, host, client);
        }

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            await _host.DisposeAsync();
            _keys.Dispose();
        }
    }
}
