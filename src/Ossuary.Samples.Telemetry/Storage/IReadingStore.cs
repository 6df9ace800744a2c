namespace Ossuary.Samples.Telemetry.Storage;

/// <summary>
/// Where readings end up. <see cref="WriteAsync"/> is called by one writer at a time, with batches;
/// it must be idempotent on (device, sequence), so that a resent reading is stored once.
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
