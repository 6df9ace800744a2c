namespace Ossuary.Samples.Telemetry.Storage;

/// <summary>
/// What <see cref="ReadingQueue"/> holds: a reading, or (<see cref="Stored"/> set) a connection's
/// marker, which the <see cref="StoreWriter"/> completes once every reading queued before it is stored.
/// </summary>
internal readonly record struct QueueEntry(StoredReading Reading, TaskCompletionSource? Stored);
