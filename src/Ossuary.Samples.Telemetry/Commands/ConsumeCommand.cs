using System.CommandLine;
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
        using ILoggerFactory logging = LoggerFactory.Create(builder => builder.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning));
        await using SqliteReadingStore store = SqliteReadingStore.Open(database);
        var consumer = new JetStreamStoreConsumer(new JetStreamOptions { Url = url }, store, logging.CreateLogger<JetStreamStoreConsumer>());
        Console.WriteLine($"storing readings from JetStream at {url} in {Path.GetFullPath(database)}. Ctrl+C stops.");
        await consumer.RunAsync(cancellationToken);
        Console.WriteLine($"stopped; {consumer.Stored} reading(s) stored.");
        return 0;
    }
}
