using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ossuary.Samples.Telemetry.Storage;

/// <summary>
/// The default store: one SQLite file in WAL mode, one transaction and one prepared
/// <c>INSERT OR IGNORE</c> per batch, on disk when <see cref="WriteAsync"/> returns (the log is
/// synced at every commit, as <see cref="IReadingStore"/> requires). The unique index on (device, seq) makes a resent reading a
/// no-op; a reading without a sequence number is a no-op when its <see cref="StoredReading.Origin"/>
/// (the JetStream message id it came under) is stored already, and is always inserted without one
/// (SQLite treats NULLs as distinct).
/// A reading whose (device, seq) is stored already with another measurement (sensor, value, timestamp) is
/// not a resend but a device that numbers from the start again (a reboot, a reset): it is stored too,
/// without a sequence number and with the origin <c>reused:&lt;seq&gt;:&lt;fingerprint&gt;</c> (so that its
/// own resend is a no-op), counted in <see cref="Reused"/> and said once per device at Warning.
/// Devices are numbered in a <c>devices</c> table, so that the readings and their index hold an
/// integer instead of a 64-character key (measured: the text index made inserts 5x slower).
/// Queries open their own connections, which WAL lets read while the writer writes.
/// </summary>
public sealed partial class SqliteReadingStore : IReadingStore
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
    private readonly SqliteCommand _stored;
    private readonly Dictionary<string, long> _deviceIds = new(StringComparer.Ordinal);
    private readonly HashSet<string> _reusersSaid = new(StringComparer.Ordinal);
    private readonly ILogger _logger;

    // Held by a write: a close asked for from another thread (a second signal) closes only an idle
    // store, as a Microsoft.Data.Sqlite connection must not be disposed under a command it runs.
    private readonly Lock _gate = new();
    private bool _closed;
    private long _reused;

    private SqliteReadingStore(SqliteConnection connection, ILogger logger)
    {
        _connection = connection;
        _logger = logger;
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

        // Only when an insert was ignored: the fast path (a new reading) never runs it.
        _stored = connection.CreateCommand();
        _stored.CommandText = "SELECT sensor, value, ts FROM readings WHERE device = $device AND seq = $seq";
        _stored.Parameters.Add("$device", SqliteType.Integer);
        _stored.Parameters.Add("$seq", SqliteType.Integer);
        _stored.Prepare();
    }

    /// <summary>The database file.</summary>
    public string Path => _connection.DataSource;

    /// <summary>
    /// Readings stored under a sequence number their device had used for another reading (it restarted
    /// its numbering): kept, without the number, beside the reading stored under it first.
    /// </summary>
    public long Reused => Interlocked.Read(ref _reused);

    /// <summary>Opens (creating if needed) the database at <paramref name="path"/>.</summary>
    /// <param name="path">The database file.</param>
    /// <param name="logger">Where a device that reuses its sequence numbers is said (event 1723, once per device); none when null.</param>
    /// <exception cref="SqliteException">The file cannot be opened or is not a readings database.</exception>
    public static SqliteReadingStore Open(string path, ILogger? logger = null)
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
            return new SqliteReadingStore(connection, logger ?? NullLogger.Instance);
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

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            return ValueTask.FromResult(Write(batch));
        }
    }

    /// <summary>
    /// Closes the store if no write is under way, and says whether it is closed. For an exit that cannot wait
    /// for the writer: closed, the database is whole on disk (SQLite folds the log into it); left open while a
    /// batch waits for SQLite, that batch is not committed, and SQLite drops it at the file's next open.
    /// </summary>
    public bool TryCloseIdle()
    {
        if (!_gate.TryEnter())
        {
            return false;
        }

        try
        {
            Close();
            return true;
        }
        finally
        {
            _gate.Exit();
        }
    }

    private int Write(IReadOnlyList<StoredReading> batch)
    {
        // Microsoft.Data.Sqlite is synchronous underneath; the writer runs on its own task anyway.
        using SqliteTransaction transaction = _connection.BeginTransaction();
        _insert.Transaction = transaction;
        _addDevice.Transaction = transaction;
        _stored.Transaction = transaction;
        int added = 0;
        List<StoredReading>? reused = null;
        try
        {
            foreach (StoredReading reading in batch)
            {
                long device = DeviceId(reading.Device);
                _device.Value = device;
                _sequence.Value = reading.Sequence is long seq ? seq : DBNull.Value;
                _sensor.Value = reading.Sensor;
                _value.Value = reading.Value;
                _timestamp.Value = reading.TimestampMs;
                _origin.Value = reading.Sequence is null && reading.Origin is { } origin ? origin : DBNull.Value;
                int inserted = _insert.ExecuteNonQuery(); // 0 when OR IGNORE ignored it: stored already
                if (inserted == 0 && reading.Sequence is long number && !IsStored(device, reading))
                {
                    // Another reading under this number: not a resend, and dropping it would lose a
                    // reading the device is told is stored. Kept without the number (the unique index
                    // holds the first), under an origin that makes its own resend a no-op.
                    _sequence.Value = DBNull.Value;
                    _origin.Value = string.Create(CultureInfo.InvariantCulture, $"reused:{number}:{ReadingFingerprint.Of(reading)}");
                    inserted = _insert.ExecuteNonQuery();
                    if (inserted == 1)
                    {
                        (reused ??= []).Add(reading);
                    }
                }

                added += inserted;
            }

            transaction.Commit();
        }
        catch
        {
            // Device ids handed out in this transaction are gone with it.
            _deviceIds.Clear();
            throw;
        }

        if (reused is not null)
        {
            // Said once the batch is committed: stored, not merely about to be.
            Interlocked.Add(ref _reused, reused.Count);
            foreach (StoredReading reading in reused)
            {
                if (_reusersSaid.Add(reading.Device))
                {
                    LogSequenceReused(_logger, reading.Device, reading.Sequence!.Value);
                }
            }
        }

        return added;
    }

    /// <summary>Whether the reading stored under <paramref name="reading"/>'s (device, seq) is this same measurement: a resend.</summary>
    private bool IsStored(long device, in StoredReading reading)
    {
        _stored.Parameters[0].Value = device;
        _stored.Parameters[1].Value = reading.Sequence!.Value;
        using SqliteDataReader row = _stored.ExecuteReader();
        return row.Read() && ReadingFingerprint.SameMeasurement(reading, reading with { Sensor = row.GetString(0), Value = row.GetDouble(1), TimestampMs = row.GetInt64(2) });
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
        lock (_gate)
        {
            Close();
        }

        return ValueTask.CompletedTask;
    }

    private void Close()
    {
        if (!_closed)
        {
            _closed = true;
            _insert.Dispose();
            _addDevice.Dispose();
            _stored.Dispose();
            _connection.Dispose();
        }
    }

    internal static string ConnectionString(string path, SqliteOpenMode mode) =>
        new SqliteConnectionStringBuilder { DataSource = path, Mode = mode, Pooling = false }.ToString();

    [LoggerMessage(EventId = 1723, Level = LogLevel.Warning, Message = "Device {Device} sent a reading under sequence number {Sequence}, which is stored already with another reading: the device numbers from the start again (a reboot, a reset, a firmware bug). Both are kept (the later without its number); its readings under reused numbers are counted (telemetry_readings_reused_total), and this is said once per device.")]
    private static partial void LogSequenceReused(ILogger logger, string device, long sequence);
}
