using System.Diagnostics;
using DuckDB.NET.Data;
using Microsoft.Data.Sqlite;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Telemetry.Bench;

/// <summary>
/// The sample's write pattern (batches of 4,096 readings from 1,000 devices, 64-character device keys)
/// into SQLite as the sample stores it (WAL, one transaction and one prepared INSERT OR IGNORE per
/// batch, unique index on (device, seq)) and into DuckDB with its appender (one appender per batch).
/// </summary>
internal static class StoreComparison
{
    private const int Batch = 4_096;
    private const int Devices = 1_000;

    public static async Task RunAsync(int readings, Report report)
    {
        string directory = Directory.CreateTempSubdirectory("ossuary-store-bench-").FullName;
        try
        {
            StoredReading[] data = Generate(readings);
            double sqlite = await MeasureAsync(data, async batches =>
            {
                await using SqliteReadingStore store = SqliteReadingStore.Open(Path.Combine(directory, "bench.db"));
                foreach (StoredReading[] batch in batches)
                {
                    await store.WriteAsync(batch, CancellationToken.None);
                }
            });
            report.Add("telemetry.store.sqlite.readings_per_second", sqlite, "readings/s");

            // The same without the indexes: what the (device, seq) uniqueness and the (device, ts) index cost.
            double bare = await MeasureAsync(data, batches =>
            {
                using var connection = new SqliteConnection($"Data Source={Path.Combine(directory, "bare.db")};Pooling=False");
                connection.Open();
                using (SqliteCommand setup = connection.CreateCommand())
                {
                    setup.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE readings(device TEXT NOT NULL, seq INTEGER, sensor TEXT NOT NULL, value REAL NOT NULL, ts INTEGER NOT NULL)";
                    setup.ExecuteNonQuery();
                }

                using SqliteCommand insert = connection.CreateCommand();
                insert.CommandText = "INSERT INTO readings VALUES($d, $s, $n, $v, $t)";
                SqliteParameter d = insert.Parameters.Add("$d", SqliteType.Text), q = insert.Parameters.Add("$s", SqliteType.Integer),
                    n = insert.Parameters.Add("$n", SqliteType.Text), v = insert.Parameters.Add("$v", SqliteType.Real), t = insert.Parameters.Add("$t", SqliteType.Integer);
                insert.Prepare();
                foreach (StoredReading[] batch in batches)
                {
                    using SqliteTransaction transaction = connection.BeginTransaction();
                    insert.Transaction = transaction;
                    foreach (StoredReading r in batch)
                    {
                        d.Value = r.Device;
                        q.Value = r.Sequence;
                        n.Value = r.Sensor;
                        v.Value = r.Value;
                        t.Value = r.TimestampMs;
                        insert.ExecuteNonQuery();
                    }

                    transaction.Commit();
                }

                return Task.CompletedTask;
            });
            report.Add("telemetry.store.sqlite_no_index.readings_per_second", bare, "readings/s");

            report.Add("telemetry.store.duckdb_appender.readings_per_second", await MeasureDuckDbAsync(data, Path.Combine(directory, "bench.duckdb"), primaryKey: false), "readings/s");

            // With the uniqueness the sample needs: a PRIMARY KEY (device, seq). A duplicate then fails
            // the whole append (the appender has no INSERT OR IGNORE), which this run does not exercise.
            report.Add("telemetry.store.duckdb_appender_pk.readings_per_second", await MeasureDuckDbAsync(data, Path.Combine(directory, "pk.duckdb"), primaryKey: true), "readings/s");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static Task<double> MeasureDuckDbAsync(StoredReading[] data, string path, bool primaryKey) => MeasureAsync(data, batches =>
    {
        using var connection = new DuckDBConnection($"Data Source={path}");
        connection.Open();
        using (DuckDBCommand create = connection.CreateCommand())
        {
            create.CommandText = "CREATE TABLE readings(device VARCHAR NOT NULL, seq BIGINT, sensor VARCHAR NOT NULL, value DOUBLE NOT NULL, ts BIGINT NOT NULL"
                + (primaryKey ? ", PRIMARY KEY (device, seq))" : ")");
            create.ExecuteNonQuery();
        }

        foreach (StoredReading[] batch in batches)
        {
            // Disposing the appender flushes it: one batch is in the table when this returns.
            using DuckDBAppender appender = connection.CreateAppender("readings");
            foreach (StoredReading r in batch)
            {
                appender.CreateRow().AppendValue(r.Device).AppendValue(r.Sequence).AppendValue(r.Sensor).AppendValue(r.Value).AppendValue(r.TimestampMs).EndRow();
            }
        }

        using DuckDBCommand checkpoint = connection.CreateCommand();
        checkpoint.CommandText = "CHECKPOINT";
        checkpoint.ExecuteNonQuery();
        return Task.CompletedTask;
    });

    private static async Task<double> MeasureAsync(StoredReading[] data, Func<IEnumerable<StoredReading[]>, Task> write)
    {
        long start = Stopwatch.GetTimestamp();
        await write(data.Chunk(Batch));
        return data.Length / Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    private static StoredReading[] Generate(int readings)
    {
        string[] devices = Enumerable.Range(0, Devices).Select(i => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(i)))).ToArray();
        string[] sensors = ["temp", "humidity", "pressure"];
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        return Enumerable.Range(0, readings)
            .Select(i => new StoredReading(devices[i % Devices], (i / Devices) + 1, sensors[i % 3], 18 + (i % 10) + 0.5, now + (i / Devices)))
            .ToArray();
    }
}
