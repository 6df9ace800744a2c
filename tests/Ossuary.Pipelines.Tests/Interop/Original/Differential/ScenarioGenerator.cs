namespace Ossuary.Pipelines.Tests.Interop.Original.Differential;

/// <summary>
/// Generates <see cref="DiffScenario"/>s from a 64-bit seed, reproducibly: the same seed gives
/// the same scenario on every machine (System.Random with a seed is not promised to be stable
/// across .NET versions, so this uses its own SplitMix64).
/// </summary>
internal static class ScenarioGenerator
{
    /// <summary>The seed of scenario <paramref name="index"/> of a run started with <paramref name="runSeed"/>.</summary>
    public static ulong ScenarioSeed(ulong runSeed, int index) => Mix(runSeed + (0x9E3779B97F4A7C15UL * (ulong)(index + 1)));

    public static DiffScenario Generate(ulong seed)
    {
        var r = new SplitMix(seed);
        bool auth = r.Chance(50);
        byte[]? serverSecret = auth || r.Chance(70) ? r.Bytes(32) : null;
        byte[]? clientSecret = r.Chance(70) ? r.Bytes(32) : null;
        string? serverKey = serverSecret is null ? null : PublicKeyOf(serverSecret);
        string? clientKey = clientSecret is null ? null : PublicKeyOf(clientSecret);

        // The client trusts the server's key, trusts on first use, or trusts only someone else.
        var clientAuthorized = new List<string>();
        bool tofu = false;
        int trust = r.Next(100);
        if (trust < 55 && serverKey is not null)
        {
            clientAuthorized.Add(serverKey);
        }
        else if (trust < 85)
        {
            tofu = true;
        }

        if (r.Chance(20))
        {
            clientAuthorized.Insert(0, PublicKeyOf(r.Bytes(32)));
        }

        // An authenticated server admits the client (allow-listed) or not (unknown client).
        var serverAuthorized = new List<string>();
        if (clientKey is not null && r.Chance(auth ? 75 : 50))
        {
            serverAuthorized.Add(clientKey);
        }

        if (r.Chance(25))
        {
            serverAuthorized.Add(PublicKeyOf(r.Bytes(32)));
        }

        byte[][] clientMessages = [.. Enumerable.Range(0, r.Next(5)).Select(_ => Message(r))];
        byte[][] serverMessages = [.. Enumerable.Range(0, r.Next(4)).Select(_ => Message(r))];

        int faultCount = r.Next(100) switch
        {
            < 30 => 0,
            < 75 => 1,
            < 93 => 2,
            _ => 3,
        };
        var faults = new Fault[faultCount];
        for (int i = 0; i < faultCount; i++)
        {
            string side = r.Chance(50) ? "client" : "server";

            // Mostly the handshake and the first data packets; sometimes a late one.
            int written = 2 + (side == "client" ? clientMessages.Length : serverMessages.Length);
            int index = r.Chance(85) ? r.Next(written + 1) : r.Next(written + 12);
            faults[i] = r.Next(100) switch
            {
                < 60 => new Fault(side, index, FaultKind.Corrupt, r.Next(16412), 1 + r.Next(255)),
                < 80 => new Fault(side, index, FaultKind.InjectReset),
                < 90 => new Fault(side, index, FaultKind.InjectCleanDisconnect),
                _ => new Fault(side, index, FaultKind.InjectErrorDisconnect),
            };
        }

        // A clean close needs a handshake that completes (ref-peer pair runs those scenarios).
        bool completes = (tofu || (serverKey is not null && clientAuthorized.Contains(serverKey)))
            && (!auth || (clientKey is not null && serverAuthorized.Contains(clientKey)));
        return new DiffScenario(
            seed, auth, serverSecret, clientSecret, [.. clientAuthorized], [.. serverAuthorized], tofu,
            clientMessages, serverMessages, faults, ClientDisconnect: faultCount == 0 && completes && r.Chance(60));
    }

    private static byte[] Message(SplitMix r)
    {
        int size = r.Next(100) switch
        {
            < 10 => 0,
            < 45 => 1 + r.Next(16),
            < 75 => 17 + r.Next(496),
            < 92 => 513 + r.Next(3584),
            < 97 => 4097 + r.Next(12287),
            _ => OssuarySessionMax,
        };
        return r.Bytes(size);
    }

    private const int OssuarySessionMax = Ossuary.Pipelines.Protocol.OssuarySession.MaxPlaintextLength;

    internal static string PublicKeyOf(byte[] seed)
    {
        using OssuaryIdentity identity = OssuaryIdentity.FromSeed(seed);
        return identity.PublicKey.ToString();
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private sealed class SplitMix(ulong seed)
    {
        private ulong _state = seed;

        public ulong NextULong()
        {
            _state += 0x9E3779B97F4A7C15UL;
            return Mix(_state);
        }

        public int Next(int bound) => (int)(NextULong() % (ulong)bound);

        public bool Chance(int percent) => Next(100) < percent;

        public byte[] Bytes(int count)
        {
            byte[] b = new byte[count];
            ulong word = 0;
            for (int i = 0; i < count; i++)
            {
                if (i % 8 == 0)
                {
                    word = NextULong();
                }

                b[i] = (byte)(word >> (8 * (i % 8)));
            }

            return b;
        }
    }
}
