using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Net;

namespace Ossuary.Samples.Telemetry.JetStream;

/// <summary>
/// The NATS client of the ingestion nodes and of <c>consume</c>: one that notices a frozen server, and
/// whose outages are logged (<see cref="NatsOutageLog"/>).
/// </summary>
internal static class NatsConnections
{
    /// <summary>
    /// How often the client pings the server. A server that is frozen (stopped, swapping, partitioned
    /// away) keeps the TCP connection open and answers nothing: only an unanswered ping shows it. The
    /// client's default, 2 minutes with 2 pings outstanding, left such a server unnoticed for 4 to 6
    /// minutes, through which consume stored nothing and said nothing.
    /// </summary>
    public static readonly TimeSpan PingInterval = TimeSpan.FromSeconds(5);

    /// <summary>Pings left unanswered before the connection is given up as lost.</summary>
    public const int MaxPingsOut = 2;

    /// <summary>
    /// The longest a frozen server goes unnoticed: the first ping after it froze comes within one
    /// interval, and the connection is given up at the tick that finds <see cref="MaxPingsOut"/> pings
    /// unanswered. About 15 s.
    /// </summary>
    public static TimeSpan StaleAfter => PingInterval * (MaxPingsOut + 1);

    /// <summary>A client for <paramref name="url"/> (not connected yet) whose outages go to <paramref name="logger"/>.</summary>
    public static NatsClient Create(string url, ILogger logger)
    {
        var outages = new NatsOutageLog(logger);
        var client = new NatsClient(new NatsOpts { Url = url, PingInterval = PingInterval, MaxPingOut = MaxPingsOut, LoggerFactory = outages.ClientLogs });
        outages.Watch(client.Connection);
        return client;
    }
}
