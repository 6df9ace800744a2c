using Microsoft.Data.Sqlite;

namespace Ossuary.Samples.Telemetry.Storage;

/// <summary>
/// The default store: one SQLite file in WAL mode, one transaction and one prepared
/// <c>INSERT OR IGNORE</c> per batch, on disk when <see cref="WriteAsync"/> returns (the log is
/// synced at every commit, as <see cref="IReadingStore"/> requires). The unique index on (device, seq) makes a resent reading a
/// no-op; a reading without a sequence number is a no-op when its <see cref="StoredReading.Origin"/>
/// (the JetStream message id it came under) is stored already, and is always inserted without one
/// (SQLite treats NULLs as distinct).
/// Devices are numbered in a <c>devices</c> table, so that the readings and their index hold an
/// integer instead of a 64-character key (measured: the text index made inserts 5x slower).
/// Queries open their own connections, which WAL lets read while the writer writes.
/// </summary>
public sealed class SqliteReadingStore : IReadingStore
{
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS devices (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE);
        CREATE TABLE IF NOT EXISTS readings (
            device INTEGER NOT NULL REFERENCES devices(id),
            seq INTEGER,
            sensor TEXT NOT NULL,
            value REAL NOT NULL,
            ts INTEGER NOT NULL,
            origin TEXT);
        CREATE UNIQUE INDEX IF NOT EXISTS readings_device_seq ON readings(device, seq);
        """;

    // Only readings without a sequence number carry an origin: the index stays small, and the
    // (device, seq) inserts that make up the bulk of the traffic do not pay for a text index.
    private const string OriginIndex = "CREATE UNIQUE INDEX IF NOT EXISTS readings_device_origin ON readings(device, origin) WHERE origin IS NOT NULL;";

    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _insert;
    private readonly SqliteParameter _device;
    private readonly SqliteParameter _sequence;
    private readonly SqliteParameter _sensor;
    private readonly SqliteParameter _value;
    private readonly SqliteParameter _timestamp;
    private readonly SqliteParameter _origin;
    private readonly SqliteCommand _addDevice;
    private readonly Dictionary<string, long> _deviceIds = new(StringComparer.Ordinal);

    private SqliteReadingStore(SqliteConnection connection)
    {
        _connection = connection;
        _insert = connection.CreateCommand();
        _insert.CommandText = "INSERT OR IGNORE INTO readings(device, seq, sensor, value, ts, origin) VALUES($device, $seq, $sensor, $value, $ts, $origin)";
        _device = _insert.Parameters.Add("$device", SqliteType.Integer);
        _sequence = _insert.Parameters.Add("$seq", SqliteType.Integer);
        _sensor = _insert.Parameters.Add("$sensor", SqliteType.Text);
        _value = _insert.Parameters.Add("$value", SqliteType.Real);
        _timestamp = _insert.Parameters.Add("$ts", SqliteType.Integer);
        _origin = _insert.Parameters.Add("$origin", SqliteType.Text);
        _insert.Prepare();
        _addDevice = connection.CreateCommand();
        _addDevice.CommandText = "INSERT INTO devices(key) VALUES($key) ON CONFLICT(key) DO UPDATE SET key = excluded.key RETURNING id";
        _addDevice.Parameters.Add("$key", SqliteType.Text);
        _addDevice.Prepare();
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

            // WAL: readers (queries) do not block the writer. synchronous=FULL: a commit returns once
            // the log is on disk. A commit is what a device's "ok N" (and consume's acknowledgement,
            // after which JetStream deletes the reading) stand on; under NORMAL the log was synced only
            // at checkpoints, so a power cut lost readings the devices had been told were stored. One
            // sync per batch: the writer's batches grow with the load, so the sync is shared.
            setup.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;";
            setup.ExecuteNonQuery();
            CreateOrMigrate(connection);
            return new SqliteReadingStore(connection);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates the tables, or brings a file an earlier version made up to date: its readings table has
    /// no <c>origin</c> column (it stored a redelivered reading without a sequence number twice).
    /// Immediate, so that two processes opening the same old file do not both add the column.
    /// </summary>
    private static void CreateOrMigrate(SqliteConnection connection)
    {
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: false);
        using SqliteCommand command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = Schema;
        command.ExecuteNonQuery();
        command.CommandText = "SELECT count(*) FROM pragma_table_info('readings') WHERE name = 'origin'";
        if ((long)command.ExecuteScalar()! == 0)
        {
            command.CommandText = "ALTER TABLE readings ADD COLUMN origin TEXT";
            command.ExecuteNonQuery();
        }

        command.CommandText = OriginIndex;
        command.ExecuteNonQuery();
        transaction.Commit();
    }

    /// <inheritdoc />
    public ValueTask<int> WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();

        // Microsoft.Data.Sqlite is synchronous underneath; the writer runs on its own task anyway.
        using SqliteTransaction transaction = _connection.BeginTransaction();
        _insert.Transaction = transaction;
        _addDevice.Transaction = transaction;
        int added = 0;
        try
        {
            foreach (StoredReading reading in batch)
            {
                _device.Value = DeviceId(reading.Device);
                _sequence.Value = reading.Sequence is long seq ? seq : DBNull.Value;
                _sensor.Value = reading.Sensor;
                _value.Value = reading.Value;
                _timestamp.Value = reading.TimestampMs;
                _origin.Value = reading.Sequence is null && reading.Origin is { } origin ? origin : DBNull.Value;
                added += _insert.ExecuteNonQuery(); // 0 when OR IGNORE ignored it: stored already
            }

            transaction.Commit();
        }
        catch
        {
            // Device ids handed out in this transaction are gone with it.
            _deviceIds.Clear();
            throw;
        }

        return ValueTask.FromResult(added);
    }

    private long DeviceId(string key)
    {
        if (!_deviceIds.TryGetValue(key, out long id))
        {
            _addDevice.Parameters[0].Value = key;
            id = (long)_addDevice.ExecuteScalar()!;
            _deviceIds[key] = id;
        }

        return id;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _insert.Dispose();
        _addDevice.Dispose();
        _connection.Dispose();
        return ValueTask.CompletedTask;
    }

    internal static string ConnectionString(string path, SqliteOpenMode mode) =>
        new SqliteConnectionStringBuilder { DataSource = path, Mode = mode, Pooling = false }.ToString();
}
