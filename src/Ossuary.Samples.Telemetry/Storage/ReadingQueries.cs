using Microsoft.Data.Sqlite;

namespace Ossuary.Samples.Telemetry.Storage;

/// <summary>Read-only queries on a <see cref="SqliteReadingStore"/> file; safe while a server writes to it.</summary>
public static class ReadingQueries
{
    /// <summary>
    /// The readings of <paramref name="device"/> (64 hex characters) taken at or after <paramref name="sinceMs"/>, oldest first,
    /// each with its <see cref="StoredReading.Origin"/> (<c>reused:&lt;seq&gt;:&lt;fingerprint&gt;</c> names the number a reading stored without one was sent under).
    /// </summary>
    /// <exception cref="FileNotFoundException">There is no database at <paramref name="path"/>.</exception>
    public static IReadOnlyList<StoredReading> Readings(string path, string device, long sinceMs, int limit = int.MaxValue)
    {
        using SqliteConnection connection = OpenReadOnly(path);
        using SqliteCommand query = connection.CreateCommand();
        query.CommandText = "SELECT d.key, r.seq, r.sensor, r.value, r.ts, r.origin FROM readings r JOIN devices d ON d.id = r.device WHERE d.key = $device AND r.ts >= $since ORDER BY r.ts, r.seq LIMIT $limit";
        query.Parameters.AddWithValue("$device", device);
        query.Parameters.AddWithValue("$since", sinceMs);
        query.Parameters.AddWithValue("$limit", limit);
        var readings = new List<StoredReading>();
        using SqliteDataReader row = query.ExecuteReader();
        while (row.Read())
        {
            readings.Add(new StoredReading(row.GetString(0), row.IsDBNull(1) ? null : row.GetInt64(1), row.GetString(2), row.GetDouble(3), row.GetInt64(4), row.IsDBNull(5) ? null : row.GetString(5)));
        }

        return readings;
    }

    /// <summary>Every device's totals, ordered by device.</summary>
    /// <exception cref="FileNotFoundException">There is no database at <paramref name="path"/>.</exception>
    public static IReadOnlyList<DeviceTotals> Totals(string path)
    {
        using SqliteConnection connection = OpenReadOnly(path);
        using SqliteCommand query = connection.CreateCommand();
        query.CommandText = "SELECT d.key, count(*), count(r.seq), min(r.seq), max(r.seq), min(r.ts), max(r.ts) FROM readings r JOIN devices d ON d.id = r.device GROUP BY r.device ORDER BY d.key";
        var totals = new List<DeviceTotals>();
        using SqliteDataReader row = query.ExecuteReader();
        while (row.Read())
        {
            totals.Add(new DeviceTotals(
                row.GetString(0), row.GetInt64(1), row.GetInt64(2), row.IsDBNull(3) ? null : row.GetInt64(3), row.IsDBNull(4) ? null : row.GetInt64(4), row.GetInt64(5), row.GetInt64(6)));
        }

        return totals;
    }

    private static SqliteConnection OpenReadOnly(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"No readings database at '{path}'.", path);
        }

        var connection = new SqliteConnection(SqliteReadingStore.ConnectionString(path, SqliteOpenMode.ReadOnly));
        connection.Open();
        return connection;
    }
}
