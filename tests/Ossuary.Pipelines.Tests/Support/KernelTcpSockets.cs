using System.Globalization;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// The kernel's view of this machine's established TCP sockets on 127.0.0.1 (/proc/net/tcp): which
/// timer each has armed and when it fires, to see that keep-alive took effect where it counts.
/// </summary>
internal static class KernelTcpSockets
{
    /// <summary>The timer of an established socket that is idle with keep-alive on.</summary>
    public const int KeepAliveTimer = 2;

    /// <summary>One socket: <paramref name="Timer"/> is the kind armed (0 none, 1 retransmission, 2 keep-alive), <paramref name="Due"/> when it fires.</summary>
    public sealed record Entry(int LocalPort, int RemotePort, int Timer, TimeSpan Due);

    /// <summary>
    /// The one established 127.0.0.1 socket that <paramref name="which"/> picks, once nothing it sent
    /// awaits an acknowledgement (the retransmission timer, shown in place of keep-alive's).
    /// </summary>
    /// <remarks>
    /// The kernel makes /proc/net/tcp afresh for each read of it, a page at a time: sockets opened or
    /// closed meanwhile (other tests run in parallel) shift the table, so one reading can list a socket
    /// twice or miss it (seen in a full run: "Sequence contains more than one element"). A reading
    /// that does not show exactly one is taken again.
    /// </remarks>
    public static async Task<Entry> IdleAsync(Func<Entry, bool> which)
    {
        const int Readings = 250; // five seconds: a retransmission on loopback is over in milliseconds
        List<Entry> found = [];
        for (int reading = 0; reading < Readings; reading++)
        {
            found = Established().Where(which).ToList();
            if (found.Count == 1 && found[0].Timer != 1)
            {
                return found[0];
            }

            await Task.Delay(20);
        }

        throw new InvalidOperationException(found.Count == 0
            ? "no such established socket on 127.0.0.1 in /proc/net/tcp"
            : $"{Readings} readings of /proc/net/tcp, the last found: {string.Join(", ", found)}");
    }

    /// <summary>
    /// Waits until the 127.0.0.1 socket with local port <paramref name="localPort"/> (and remote port
    /// <paramref name="remotePort"/>, if given) has left ESTABLISHED: its side has sent or queued its
    /// end (a shutdown of its sending, or its close). False if it has not after <paramref name="atMost"/>.
    /// </summary>
    public static async Task<bool> LeavesEstablishedAsync(int localPort, int? remotePort, TimeSpan atMost)
    {
        string local = "0100007F:" + localPort.ToString("X4", CultureInfo.InvariantCulture);
        string? remote = remotePort is int port ? "0100007F:" + port.ToString("X4", CultureInfo.InvariantCulture) : null;
        long started = Environment.TickCount64;
        do
        {
            // "sl local rem st ...": the addresses and ports, then the state (01 ESTABLISHED).
            bool established = File.ReadLines("/proc/net/tcp").Skip(1)
                .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Any(fields => fields[1] == local && (remote is null || fields[2] == remote) && fields[3] == "01");
            if (!established)
            {
                return true;
            }

            await Task.Delay(20);
        }
        while (Environment.TickCount64 - started < atMost.TotalMilliseconds);

        return false;
    }

    private static IEnumerable<Entry> Established()
    {
        foreach (string line in File.ReadLines("/proc/net/tcp").Skip(1))
        {
            // "sl local rem st tx:rx tr:tm->when ...": addresses as little-endian hex, state 01 ESTABLISHED,
            // the timer's due time in clock ticks (USER_HZ, 100 a second).
            string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            string[] local = fields[1].Split(':');
            string[] remote = fields[2].Split(':');
            if (fields[3] != "01" || local[0] != "0100007F" || remote[0] != "0100007F")
            {
                continue;
            }

            string[] timer = fields[5].Split(':');
            yield return new Entry(Hex(local[1]), Hex(remote[1]), Hex(timer[0]), TimeSpan.FromSeconds(long.Parse(timer[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture) / 100.0));
        }
    }

    private static int Hex(string text) => int.Parse(text, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
