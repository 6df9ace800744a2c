using System.CommandLine;
using System.Net;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Trust;
using Ossuary.Samples.Telemetry.Keys;
using Ossuary.Samples.Telemetry.Server;

namespace Ossuary.Samples.Telemetry.Commands;

/// <summary>
/// <c>server --port 7400 --key server.key --authorized-keys devices.keys</c>: counts readings until
/// Ctrl+C (or SIGTERM), printing the summary table every <c>--summary-seconds</c> and once more after
/// the last connection has closed.
/// </summary>
internal static class ServerCommand
{
    public static Command Create()
    {
        var bind = SampleOptions.Text("--bind", "Address to listen on (0.0.0.0 for other machines).", "127.0.0.1");
        var port = SampleOptions.Int("--port", "TCP port.", 7400, max: 65535);
        var key = SampleOptions.Text("--key", "The server's secret key file.", "fleet/server.key");
        var authorized = SampleOptions.Text("--authorized-keys", "The devices admitted.", "fleet/devices.keys");
        // Bounded here, so that a period no timer takes (past 49.7 days) is a bad argument before the
        // server listens, not a crash once it does.
        var summary = SampleOptions.Int("--summary-seconds", "Seconds between tables (at most a day).", 5, min: 1, max: 86_400);
        var rows = SampleOptions.Int("--rows", "Show only the N busiest devices (0: all).", 0);
        var db = SampleOptions.Text("--db", "The SQLite file readings are stored in (created if missing).", "telemetry.db");
        var nats = SampleOptions.Text("--nats", "Publish readings to NATS JetStream at this URL (e.g. nats://127.0.0.1:4222) instead of --db; run 'consume' to store them.", "");
        var metrics = SampleOptions.Int("--metrics-port", "Serve Prometheus metrics at http://BIND:PORT/metrics (0: none).", 0, max: 65535);
        var maxConnections = SampleOptions.Int("--max-connections", "Device connections open at once at most; more are closed as they are accepted.", TelemetryServerOptions.DefaultMaxConnections, min: 1);
        var command = new Command("server", "Store readings from authenticated devices until Ctrl+C.") { bind, port, key, authorized, summary, rows, db, nats, metrics, maxConnections };
        command.SetAction((parse, _) =>
        {
            IPAddress address = IPAddress.TryParse(parse.GetValue(bind), out IPAddress? parsed)
                ? parsed
                : throw new UsageException("--bind must be an IP address, e.g. 0.0.0.0");
            return RunAsync(address, parse.GetValue(port), parse.GetValue(key)!, parse.GetValue(authorized)!, parse.GetValue(summary), parse.GetValue(rows), parse.GetValue(db)!, parse.GetValue(nats)!, parse.GetValue(metrics), parse.GetValue(maxConnections));
        });
        return command;
    }

    private static async Task<int> RunAsync(IPAddress address, int port, string keyPath, string authorizedPath, int seconds, int rows, string database, string nats, int metricsPort, int maxConnections)
    {
        using OssuaryIdentity identity = KeyFiles.ReadSecretKey(keyPath);
        IReadOnlyList<OssuaryPublicKey> devices = OssuaryAuthorizedKeys.Load(authorizedPath);
        TelemetryServer server = await TelemetryServer.StartAsync(new TelemetryServerOptions
        {
            Address = address,
            Port = port,
            Identity = identity,
            AuthorizedDevices = devices.ToList(),
            DatabasePath = database,
            JetStream = nats.Length == 0 ? null : new JetStream.JetStreamOptions { Url = nats },
            MetricsPort = metricsPort == 0 ? null : metricsPort,
            MaxConnections = maxConnections,
            LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning,
        });
        using var secondSignal = new SecondSignal();
        string destination = nats.Length == 0 ? $"storing in {Path.GetFullPath(database)}" : $"publishing to JetStream at {nats}";
        Console.WriteLine($"listening on {server.EndPoint} as {identity.PublicKey}; {devices.Count} devices authorized; {destination}. Ctrl+C stops.");
        if (server.MetricsEndPoint is { } scrape)
        {
            Console.WriteLine($"metrics at http://{scrape}/metrics");
        }

        var reporter = new SummaryReporter(server.Registry, Console.Out, rows == 0 ? null : rows);
        try
        {
            await reporter.RunAsync(TimeSpan.FromSeconds(seconds), server.Stopping);
        }
        finally
        {
            // Stopping first sends every device a Disconnect, so the final table counts all it received.
            await StopAsync(server, nats.Length == 0 ? "stored" : "published", secondSignal.Given);
        }

        // A device's resend the store (or JetStream) had already is not new data: counted apart, not as stored.
        string done = nats.Length == 0 ? "stored" : "published";
        // Readings kept under a number their device had used for another (event 1723), as consume says
        // them: among "stored", and the operator should learn that a device restarted its numbering.
        string reused = server.Writer.Reused == 0 ? "" : $" ({server.Writer.Reused} of them under a sequence number their device had used for another reading, kept without it: event 1723)";
        Console.WriteLine($"stopped; {server.Writer.Persisted - server.Writer.Duplicates} reading(s) {done}{reused}, {server.Writer.Duplicates} resent and already {done} (ignored); final counts:");
        reporter.Report();
        return 0;
    }

    /// <summary>
    /// Stops the server, which waits until the store has every reading received: through a JetStream
    /// outage, until NATS is back. A second Ctrl+C, SIGTERM or SIGQUIT (Ctrl+\) gives that up
    /// (<paramref name="abandoned"/>, see <see cref="SecondSignal"/>): the host's own handlers take every signal
    /// while Kestrel waits for the connections (its 30 s shutdown timeout, all of it when a connection waits for
    /// the stalled store, or for a device that reads nothing), and do nothing with a second one. Given up with every reading received already stored, nothing was
    /// lost: the stop ends as a success, not as the failure "0 reading(s) ... not stored".
    /// </summary>
    /// <exception cref="InvalidOperationException">A second signal came first, with readings received and not stored.</exception>
    private static async Task StopAsync(TelemetryServer server, string done, Task abandoned)
    {
        // The operator learns what a second signal would give up (and a script that the stop has begun).
        Console.WriteLine($"stopping: waiting for the connections to end and every reading received to be {done}; a second Ctrl+C, SIGTERM or SIGQUIT gives that up.");
        Task stopping = server.DisposeAsync().AsTask();
        if (await Task.WhenAny(stopping, abandoned) != stopping)
        {
            // The process exits with the host's stop still running, which would have closed the store:
            // an idle SQLite store is closed here, so that its log is folded into the file. One that is
            // writing is left (its connection is the writer's, mid-command): SQLite drops that uncommitted
            // batch at the file's next open, and keeps every batch committed before it.
            bool closed = server.Store is Storage.SqliteReadingStore sqlite && sqlite.TryCloseIdle();

            // Received and not stored: queued, in the batch being written, or held by a connection
            // waiting for room. No device was told they were stored, so each resends them.
            long lost = server.Registry.Totals().Readings - server.Writer.Persisted;
            if (lost <= 0)
            {
                // The stop waited for connections with nothing of theirs unstored (a device that reads
                // nothing, say); a reading not yet read from one was not acknowledged, and is resent.
                Console.WriteLine($"stop cut short by a second signal; every reading received was {done}.");
                return;
            }

            string database = server.Store is Storage.SqliteReadingStore && !closed ? "; the database was left mid-write, and SQLite drops the unfinished batch when it next opens the file" : "";
            throw new InvalidOperationException($"stopped by a second signal before the store had every reading: {lost} reading(s) received were not {done} (their devices were not told they were, and resend them){database}.");
        }

        await stopping;
    }
}
