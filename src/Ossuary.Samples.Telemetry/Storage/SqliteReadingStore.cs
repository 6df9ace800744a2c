using Microsoft.Data.Sqlite;

namespace Ossuary.Samples.Telemetry.Storage;

/// <summary>
/// The default store: one SQLite file in WAL mode, one transaction and one prepared
/// <c>INSERT OR IGNORE</c> per batch. The unique index on (device, seq) makes a resent reading a
/// no-op; readings without a sequence number are always inserted (SQLite treats NULLs as distinct).
/// Queries open their own connections, which WAL lets read while the writer writes.
/// </summary>
public sealed class SqliteReadingStore : IReadingStore
{
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS readings (
            device TEXT NOT NULL,
            seq INTEGER,
            sensor TEXT NOT NULL,
            value REAL NOT NULL,
            ts INTEGER NOT NULL);
        CREATE UNIQUE INDEX IF NOT EXISTS readings_device_seq ON readings(device, seq);
        CREATE INDEX IF NOT EXISTS readings_device_ts ON readings(device, ts);
        """;

    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _insert;
    private readonly SqliteParameter _device;
    private readonly SqliteParameter _sequence;
    private readonly SqliteParameter _sensor;
    private readonly SqliteParameter _value;
    private readonly SqliteParameter _timestamp;

    private SqliteReadingStore(SqliteConnection connection)
    {
        _connection = connection;
        _insert = connection.CreateCommand();
        _insert.CommandText = "INSERT OR IGNORE INTO readings(device, seq, sensor, value, ts) VALUES($device, $seq, $sensor, $value, $ts)";
        _device = _insert.Parameters.Add("$device", SqliteType.Text);
        _sequence = _insert.Parameters.Add("$seq", SqliteType.Integer);
        _sensor = _insert.Parameters.Add("$sensor", SqliteType.Text);
        _value = _insert.Parameters.Add("$value", SqliteType.Real);
        _timestamp = _insert.Parameters.Add("$ts", SqliteType.Integer);
        _insert.Prepare();
    }

    /// <summary>The database file.</summary>
    public string Path => _connection.DataSource;

    /// <summary>Opens (creating if needed) the database at <paramref name="path"/>.</summary>
    /// <exception cref="SqliteException">The file cannot be opened or is not a readings database.</exception>
    public static SqliteReadingStore Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var connection = new SqliteConnection(ConnectionString(path, SqliteOpenMode.ReadWriteCreate));
        try
        {
            connection.Open();
            using SqliteCommand setup = connection.CreateCommand();

            // WAL: readers (queries) do not block the writer. synchronous=NORMAL: a commit survives a
            // crash of the process; a power cut may lose the last commits, never corrupt the file.
            setup.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; " + Schema;
            setup.ExecuteNonQuery();
            return new SqliteReadingStore(connection);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public ValueTask WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();

        // Microsoft.Data.Sqlite is synchronous underneath; the writer runs on its own task anyway.
        using SqliteTransaction transaction = _connection.BeginTransaction();
        _insert.Transaction = transaction;
        foreach (StoredReading reading in batch)
        {
            _device.Value = reading.Device;
            _sequence.Value = reading.Sequence is long seq ? seq : DBNull.Value;
            _sensor.Value = reading.Sensor;
            _value.Value = reading.Value;
            _timestamp.Value = reading.TimestampMs;
            _insert.ExecuteNonQuery();
        }

        transaction.Commit();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _insert.Dispose();
        _connection.Dispose();
        return ValueTask.CompletedTask;
    }

    internal static string ConnectionString(string path, SqliteOpenMode mode) =>
        new SqliteConnectionStringBuilder { DataSource = path, Mode = mode, Pooling = false }.ToString();
}
