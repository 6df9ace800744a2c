using System.Threading.Channels;

namespace Ossuary.Samples.Telemetry.Storage;

/// <summary>
/// The bounded queue between the connections and the <see cref="StoreWriter"/>. When it is full,
/// <see cref="TryEnqueue"/> fails and the connection handler waits in <see cref="EnqueueAsync"/>
/// without reading further: the device's bytes pile up in the (bounded) pipes and TCP windows, and the
/// device's own flushes wait. Memory stays bounded and nothing is dropped.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The CancellationTokenSource has no timer and holds nothing to release; the queue lives as long as its server.")]
public sealed class ReadingQueue
{
    private readonly Channel<QueueEntry> _channel;
    private readonly Lock _lock = new();
    private long _enqueued;
    private int _markers;
    private int _producers;
    private TaskCompletionSource? _producersLeft;
    private readonly CancellationTokenSource _failed = new();
    private volatile Exception? _failure;
    private int _failureSaid;

    /// <summary>Creates a queue of <paramref name="capacity"/> readings.</summary>
    public ReadingQueue(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _channel = Channel.CreateBounded<QueueEntry>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
    }

    /// <summary>How many readings the queue holds at most.</summary>
    public int Capacity { get; }

    /// <summary>Readings waiting for the writer now.</summary>
    public int Count => Math.Max(0, _channel.Reader.Count - Volatile.Read(ref _markers));

    /// <summary>Readings accepted into the queue so far.</summary>
    public long Enqueued => Interlocked.Read(ref _enqueued);

    internal ChannelReader<QueueEntry> Reader => _channel.Reader;

    /// <summary>Queues <paramref name="reading"/> if there is room now.</summary>
    public bool TryEnqueue(in StoredReading reading)
    {
        if (!_channel.Writer.TryWrite(new QueueEntry(reading, null)))
        {
            return false;
        }

        Interlocked.Increment(ref _enqueued);
        return true;
    }

    /// <summary>Queues <paramref name="reading"/>, waiting for room.</summary>
    /// <exception cref="ChannelClosedException">The writer has stopped (its failure is the inner exception).</exception>
    public async ValueTask EnqueueAsync(StoredReading reading, CancellationToken cancellationToken)
    {
        await _channel.Writer.WriteAsync(new QueueEntry(reading, null), cancellationToken);
        Interlocked.Increment(ref _enqueued);
    }

    /// <summary>
    /// Completes once every reading queued before this call is stored (written by the store, or
    /// acknowledged by JetStream): what a connection waits for before it tells its device so.
    /// </summary>
    /// <exception cref="ChannelClosedException">The store failed first (its failure is the inner exception).</exception>
    public async Task SyncAsync(CancellationToken cancellationToken)
    {
        var stored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // Behind the readings, in the same bounded queue: the writer meets it after storing them.
        await _channel.Writer.WriteAsync(new QueueEntry(default, stored), cancellationToken);

        // Counted once in the queue, not before: counted while it waited for room in a full queue, it
        // took one off the readings Count reports (and off the store's lag), per device syncing. Now
        // Count may say one more for a moment (the writer can even take the marker before this line).
        Interlocked.Increment(ref _markers);

        // A failed store completes no marker: its failure ends the wait, as it ends EnqueueAsync.
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _failed.Token);
        try
        {
            await stored.Task.WaitAsync(either.Token);
        }
        catch (OperationCanceledException) when (_failed.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new ChannelClosedException(_failure);
        }
    }

    /// <summary>The writer has taken a marker off the queue.</summary>
    internal void MarkerTaken() => Interlocked.Decrement(ref _markers);

    /// <summary>No more readings will come: the writer drains what is queued and stops.</summary>
    public void Complete(Exception? error = null)
    {
        if (_channel.Writer.TryComplete(error) && error is not null)
        {
            _failure = error;
            _failed.Cancel();
        }
    }

    /// <summary>
    /// Cancelled when the queue was completed with an error (the store failed): a connection then ends
    /// at once, rather than when its device next sends a reading that would be counted and dropped.
    /// </summary>
    internal CancellationToken Failed => _failed.Token;

    /// <summary>True for the first connection to ask, once the store has failed: that one says so at Warning.</summary>
    internal bool FirstToSayFailure() => Interlocked.Exchange(ref _failureSaid, 1) == 0;

    /// <summary>Throws what <see cref="EnqueueAsync"/> would, if the store has failed.</summary>
    /// <exception cref="ChannelClosedException">The writer has stopped (its failure is the inner exception).</exception>
    internal void ThrowIfFailed()
    {
        if (_failure is { } failure)
        {
            throw new ChannelClosedException(failure);
        }
    }

    /// <summary>A connection that will queue readings has started; <see cref="RemoveProducer"/> when it ends.</summary>
    internal void AddProducer()
    {
        lock (_lock)
        {
            _producers++;
        }
    }

    /// <summary>A connection added with <see cref="AddProducer"/> has ended and queues nothing more.</summary>
    internal void RemoveProducer()
    {
        TaskCompletionSource? left = null;
        lock (_lock)
        {
            if (--_producers == 0)
            {
                left = _producersLeft;
            }
        }

        left?.TrySetResult();
    }

    /// <summary>
    /// Completes the queue once every producer has ended. Kestrel's shutdown gives up on a connection
    /// after its timeout (and one second after aborting it), while its handler may still hold a reading
    /// it parsed and waits to queue behind a slow store: completing the queue then would drop it.
    /// </summary>
    internal async Task CompleteWhenProducersEndAsync()
    {
        Task left;
        lock (_lock)
        {
            left = _producers == 0 ? Task.CompletedTask : (_producersLeft ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }

        await left;
        Complete();
    }
}
