namespace Ossuary.Samples.Telemetry.Storage;

/// <summary>
/// Where readings end up. <see cref="WriteAsync"/> is called by one writer at a time, with batches;
/// it must be idempotent on (device, sequence) for the same reading, so that a resent reading is stored once,
/// and must keep another reading under a (device, sequence) it holds (a device that restarted its numbering):
/// the device is told it is stored.
/// </summary>
public interface IReadingStore : IAsyncDisposable
{
    /// <summary>
    /// Stores <paramref name="batch"/> durably (all or nothing) before it completes, and says how many of
    /// its readings were new: a resent one the store holds already is accepted and not counted, so that
    /// a count of stored readings does not report a duplicate as data stored.
    /// </summary>
    ValueTask<int> WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken);
}
