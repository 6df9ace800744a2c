using Microsoft.Extensions.Logging;

namespace Ossuary.Samples.Telemetry.Storage;

/// <summary>
/// Takes readings off the <see cref="ReadingQueue"/> in batches (as many as are queued, up to
/// <c>batchSize</c>) and writes each batch to the store in one call. A store failure closes the
/// queue with that error: connections then fail instead of feeding a queue nobody drains, and their
/// devices, not having been acknowledged at the transport level, resend after reconnecting.
/// </summary>
public sealed partial class StoreWriter
{
    private readonly ReadingQueue _queue;
    private readonly IReadingStore _store;
    private readonly int _batchSize;
    private readonly ILogger _logger;
    private readonly Task _loop;
    private long _persisted;
    private long _duplicates;
    private long _batches;
    private long _writing;

    /// <summary>Starts writing.</summary>
    public StoreWriter(ReadingQueue queue, IReadingStore store, int batchSize, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        _queue = queue;
        _store = store;
        _batchSize = batchSize;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Readings the store has accepted, resends it held already (<see cref="Duplicates"/>) included.</summary>
    public long Persisted => Interlocked.Read(ref _persisted);

    /// <summary>Readings the store accepted that it held already (a device's resend): in <see cref="Persisted"/>, and not new data.</summary>
    public long Duplicates => Interlocked.Read(ref _duplicates);

    /// <summary>
    /// Readings stored under a sequence number their device had used for another reading (<see cref="SqliteReadingStore.Reused"/>):
    /// in <see cref="Persisted"/>, and new data. Zero for another store, which does not tell.
    /// </summary>
    public long Reused => (_store as SqliteReadingStore)?.Reused ?? 0;

    /// <summary>
    /// Readings taken off the queue that the store has not yet accepted (the batch being written): with
    /// the queue's count, what has been received and is not stored.
    /// </summary>
    public long Writing => Interlocked.Read(ref _writing);

    /// <summary>Batches written.</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Completes when the queue has been completed and drained, or the store failed (then it throws that failure).</summary>
    public Task Completion => _loop;

    private async Task RunAsync()
    {
        var batch = new List<StoredReading>(_batchSize);
        var synced = new List<TaskCompletionSource>();
        try
        {
            while (await _queue.Reader.WaitToReadAsync())
            {
                batch.Clear();
                while (batch.Count < _batchSize && _queue.Reader.TryRead(out QueueEntry entry))
                {
                    if (entry.Stored is { } marker)
                    {
                        _queue.MarkerTaken();
                        synced.Add(marker);
                    }
                    else
                    {
                        batch.Add(entry.Reading);
                    }
                }

                if (batch.Count > 0)
                {
                    // Not cancellable: a batch taken off the queue is written, or the failure is reported.
                    Interlocked.Exchange(ref _writing, batch.Count);
                    int added = await _store.WriteAsync(batch, CancellationToken.None);
                    Interlocked.Add(ref _duplicates, batch.Count - added);
                    Interlocked.Add(ref _persisted, batch.Count);
                    Interlocked.Exchange(ref _writing, 0);
                    Interlocked.Increment(ref _batches);
                }

                // Every reading queued before these markers is in this batch or an earlier one: stored.
                synced.ForEach(marker => marker.TrySetResult());
                synced.Clear();
            }
        }
        catch (Exception ex)
        {
            // Closed first, so that nothing more is queued: what is still in it is lost with the
            // batch, and the operator must learn all of it, not only the batch's share.
            _queue.Complete(new InvalidOperationException("The readings store failed; see the inner exception.", ex));
            // The markers left uncompleted are let go by the queue's failure (ReadingQueue.SyncAsync).
            LogStoreFailed(_logger, ex, batch.Count + _queue.Count);
            throw;
        }
    }

    [LoggerMessage(EventId = 1701, Level = LogLevel.Error, Message = "The readings store failed with {Count} queued reading(s) not stored (the batch it failed on and those behind it); closing the queue, connections will fail and devices must resend.")]
    private static partial void LogStoreFailed(ILogger logger, Exception exception, int count);
}
