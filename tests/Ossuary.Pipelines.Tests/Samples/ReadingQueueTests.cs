using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>The queue between the connections and the store, on its own: what it says it holds.</summary>
public sealed class ReadingQueueTests
{
    [Fact]
    public async Task ASyncWaitingForRoomDoesNotHideAQueuedReading()
    {
        // A full queue (nothing takes from it: the store is stalled) and a device's sync waiting for
        // room behind it. The sync's marker is not in the queue yet, and the reading still is: the
        // store's lag (telemetry.store.lag, from Count) must not fall by one per waiting sync, as it did
        // when the marker was counted before it was queued (at 10,000 devices syncing, 10,000 too few).
        var queue = new ReadingQueue(capacity: 1);
        Assert.True(queue.TryEnqueue(new StoredReading(new string('a', 64), 1, "temp", 21.5, 1)));
        using var stop = new CancellationTokenSource();
        Task sync = queue.SyncAsync(stop.Token);
        Assert.False(sync.IsCompleted);

        Assert.Equal(1, queue.Count);

        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sync);
        Assert.Equal(1, queue.Count);
    }
}
