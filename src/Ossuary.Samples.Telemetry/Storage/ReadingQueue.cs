using System.Threading.Channels;

namespace Ossuary.Samples.Telemetry.Storage;

/// <summary>
/// The bounded queue between the connections and the <see cref="StoreWriter"/>. When it is full,
/// <see cref="TryEnqueue"/> fails and the connection handler waits in <see cref="EnqueueAsync"/>
/// without reading further: the device's bytes pile up in the (bounded) pipes and TCP windows, and the
/// device's own flushes wait. Memory stays bounded and nothing is dropped.
/// </summary>
public sealed class ReadingQueue
{
    private readonly Channel<StoredReading> _channel;
    private long _enqueued;

    /// <summary>Creates a queue of <paramref name="capacity"/> readings.</summary>
    public ReadingQueue(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _channel = Channel.CreateBounded<StoredReading>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
    }

    /// <summary>How many readings the queue holds at most.</summary>
    public int Capacity { get; }

    /// <summary>Readings waiting for the writer now.</summary>
    public int Count => _channel.Reader.Count;

    /// <summary>Readings accepted into the queue so far.</summary>
    public long Enqueued => Interlocked.Read(ref _enqueued);

    internal ChannelReader<StoredReading> Reader => _channel.Reader;

    /// <summary>Queues <paramref name="reading"/> if there is room now.</summary>
    public bool TryEnqueue(in StoredReading reading)
    {
        if (!_channel.Writer.TryWrite(reading))
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
        await _channel.Writer.WriteAsync(reading, cancellationToken);
        Interlocked.Increment(ref _enqueued);
    }

    /// <summary>No more readings will come: the writer drains what is queued and stops.</summary>
    public void Complete(Exception? error = null) => _channel.Writer.TryComplete(error);
}
