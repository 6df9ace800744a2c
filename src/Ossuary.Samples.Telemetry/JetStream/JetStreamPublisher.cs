using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Samples.Telemetry.JetStream;

/// <summary>
/// An ingestion node's "store": publishes each batch to JetStream and completes when JetStream has
/// acknowledged every reading (stored in the stream, or recognised as a duplicate by its message id).
/// Behind the same bounded queue as the SQLite store, so a slow or absent NATS server slows the devices.
/// </summary>
public sealed class JetStreamPublisher : IReadingStore
{
    private readonly NatsClient _nats;
    private readonly INatsJSContext _js;
    private readonly JetStreamOptions _options;
    private long _duplicates;

    private JetStreamPublisher(NatsClient nats, JetStreamOptions options)
    {
        _nats = nats;
        _js = nats.CreateJetStreamContext();
        _options = options;
    }

    /// <summary>Readings JetStream recognised as already published (a device's resend, possibly through another node).</summary>
    public long Duplicates => Interlocked.Read(ref _duplicates);

    /// <summary>Connects to NATS and ensures the stream exists.</summary>
    /// <exception cref="NatsException">The NATS server cannot be reached or has no JetStream.</exception>
    public static async Task<JetStreamPublisher> ConnectAsync(JetStreamOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var nats = new NatsClient(options.Url);
        try
        {
            var publisher = new JetStreamPublisher(nats, options);
            await JetStreamStream.EnsureAsync(publisher._js, options, cancellationToken);
            return publisher;
        }
        catch
        {
            await nats.DisposeAsync();
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);

        // All of the batch in flight at once, then every acknowledgement: one round trip per batch, not per reading.
        var acks = new Task<PubAckResponse>[batch.Count];
        for (int i = 0; i < batch.Count; i++)
        {
            StoredReading reading = batch[i];
            acks[i] = _js.PublishAsync(
                $"{_options.Subject}.{reading.Device}",
                ReadingMessage.Encode(reading),
                opts: new NatsJSPubOpts { MsgId = ReadingMessage.MessageId(reading) },
                cancellationToken: cancellationToken).AsTask();
        }

        foreach (PubAckResponse ack in await Task.WhenAll(acks))
        {
            // A duplicate is success here: the reading is in the stream already (EnsureSuccess would throw).
            if (ack.Duplicate && ack.Error is null)
            {
                Interlocked.Increment(ref _duplicates);
            }
            else
            {
                ack.EnsureSuccess();
            }
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _nats.DisposeAsync();
}
