using System.CommandLine;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Samples.Telemetry.Commands;

/// <summary><c>consume --nats URL --db telemetry.db</c>: stores the readings that ingestion nodes (<c>server --nats</c>) publish, until Ctrl+C.</summary>
internal static class ConsumeCommand
{
    public static Command Create()
    {
        var nats = SampleOptions.Text("--nats", "The NATS server with JetStream.", "nats://127.0.0.1:4222");
        var db = SampleOptions.Text("--db", "The SQLite file to store readings in (created if missing).", "telemetry.db");
        var command = new Command("consume", "Store the readings ingestion nodes publish to NATS JetStream, until Ctrl+C.") { nats, db };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(nats)!, parse.GetValue(db)!, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(string url, string database, CancellationToken cancellationToken)
    {
        // Program turns System.CommandLine's signal handling off (it would end the server 2 s into its
        // drain), so that token never fires on Ctrl+C or SIGTERM: without these the process died at
        // once, mid-batch, without its report. A second signal still ends it at once.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        void Stop(PosixSignalContext signal)
        {
            signal.Cancel = !stop.IsCancellationRequested;
            stop.Cancel();
        }

        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        // Information: after a NATS outage's warning (event 1713) the operator reads that it is back (1714).
        using ILoggerFactory logging = LoggerFactory.Create(builder => builder.AddSimpleConsole().SetMinimumLevel(LogLevel.Information));
        await using SqliteReadingStore store = SqliteReadingStore.Open(database, logging.CreateLogger<SqliteReadingStore>());
        var consumer = new JetStreamStoreConsumer(new JetStreamOptions { Url = url }, store, logging.CreateLogger<JetStreamStoreConsumer>());
        Console.WriteLine($"storing readings from JetStream at {url} in {Path.GetFullPath(database)}. Ctrl+C stops.");
        await consumer.RunAsync(stop.Token);
        // A redelivered batch the store had already is not "stored" again: the operator reads this line as
        // data saved. Nor is a message that was not a reading, which is still in the stream, unstored.
        string held = consumer.Held == 0 ? "" : $"; {consumer.Held} message(s) that were not readings left in the stream (event 1710)";
        // Readings a device sent under numbers it had used before (event 1723): stored, and the operator
        // should know that the device restarted its numbering.
        string reused = store.Reused == 0 ? "" : $" ({store.Reused} of them under a sequence number their device had used for another reading, kept without it: event 1723)";
        Console.WriteLine($"stopped; {consumer.Stored} reading(s) stored{reused}, {consumer.Duplicates} already stored (redelivered) and ignored{held}.");
        return 0;
    }
}
