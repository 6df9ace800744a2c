namespace Ossuary.Samples.Telemetry.Storage;

/// <summary>
/// Where readings end up. <see cref="WriteAsync"/> is called by one writer at a time, with batches;
/// it must be idempotent on (device, sequence), so that a resent reading is stored once.
/// </summary>
public interface IReadingStore : IAsyncDisposable
{
    /// <summary>Stores <paramref name="batch"/> durably (all or nothing) before it completes.</summary>
    ValueTask WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken);
}
