using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Samples.Telemetry.JetStream;

/// <summary>
/// Reads the readings stream through a durable consumer and writes it into the store in batches,
/// acknowledging a batch only after the store has it. Exactly once in the store: JetStream drops a
/// resent reading within its duplicate window, and a batch redelivered after a crash between storing
/// and acknowledging is ignored by the store's unique (device, seq), or, for a reading without a
/// sequence number, (device, the message id the node published it under).
/// </summary>
public sealed partial class JetStreamStoreConsumer(JetStreamOptions options, IReadingStore store, ILogger logger)
{
    private const int BatchSize = 1_000;
    private const string MessageIdHeader = "Nats-Msg-Id";
    private static readonly TimeSpan IdlePoll = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan AcknowledgementFlush = TimeSpan.FromSeconds(5);
    private long _stored;
    private long _duplicates;
    private long _dropped;

    /// <summary>Readings the store did not hold before: stored by this consumer.</summary>
    public long Stored => Interlocked.Read(ref _stored);

    /// <summary>
    /// Readings the store held already, and ignored: a batch redelivered after a consumer stored it and died
    /// before acknowledging it, or a device's resend after JetStream's duplicate window.
    /// </summary>
    public long Duplicates => Interlocked.Read(ref _duplicates);

    /// <summary>
    /// Messages on the readings' subjects that were not readings (another program's, another version's):
    /// acknowledged without being stored, so that they do not block the stream, which deletes them
    /// (logged as event 1710).
    /// </summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Consumes until <paramref name="cancellationToken"/> fires.</summary>
    /// <exception cref="NATS.Client.Core.NatsException">The NATS server cannot be reached or has no JetStream.</exception>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            await ConsumeAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping, even before the stream and the consumer were set up: an unacknowledged batch
            // is redelivered to the next consumer and ignored by the store if stored.
        }
    }

    private async Task ConsumeAsync(CancellationToken cancellationToken)
    {
        await using NatsClient nats = NatsConnections.Create(options.Url, logger);
        INatsJSContext js = nats.CreateJetStreamContext();
        INatsJSStream stream = await JetStreamStream.EnsureAsync(js, options, cancellationToken);
        if (JetStreamStream.KeepsStoredReadings(stream))
        {
            LogStreamKeepsReadings(logger, options.Stream);
        }

        // Explicit, not acknowledge-all: a process that died between taking a batch and storing it
        // leaves that batch pending until AckWait, and the next process's first acknowledgement
        // would, under acknowledge-all, acknowledge it too: lost, never stored.
        var config = new ConsumerConfig(options.Consumer) { AckPolicy = ConsumerConfigAckPolicy.Explicit, MaxAckPending = 10 * BatchSize };
        if (options.AckWait is TimeSpan ackWait)
        {
            config.AckWait = ackWait;
        }

        INatsJSConsumer consumer = await js.CreateOrUpdateConsumerAsync(options.Stream, config, cancellationToken);
        var batch = new List<StoredReading>(BatchSize);
        var messages = new List<NatsJSMsg<byte[]>>(BatchSize);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                batch.Clear();
                messages.Clear();
                await foreach (NatsJSMsg<byte[]> message in consumer.FetchNoWaitAsync<byte[]>(
                    new NatsJSFetchOpts { MaxMsgs = BatchSize }, cancellationToken: cancellationToken))
                {
                    messages.Add(message);
                    try
                    {
                        // The id names a reading without a sequence number: a redelivery of it (this process
                        // stored it and died before acknowledging) is then a no-op in the store, not a second row.
                        string? messageId = message.Headers is { } headers && headers.TryGetValue(MessageIdHeader, out var id) ? id.ToString() : null;
                        batch.Add(ReadingMessage.Decode(message.Data, messageId));
                    }
                    catch (FormatException ex)
                    {
                        // Not ours: skip it rather than block the stream; it is acknowledged with the batch,
                        // which deletes it, so it is counted for the stop line as well as logged.
                        Interlocked.Increment(ref _dropped);
                        LogBadMessage(logger, message.Subject, ex.Message);
                    }
                }

                if (messages.Count == 0)
                {
                    // NoWait returns what is there at once; an empty stream is polled, not waited on for seconds.
                    await Task.Delay(IdlePoll, cancellationToken);
                    continue;
                }

                int added = await store.WriteAsync(batch, cancellationToken);
                Interlocked.Add(ref _stored, added);
                Interlocked.Add(ref _duplicates, batch.Count - added);

                // Each message of the batch (one connection, so in order; the acknowledgements are not waited for).
                foreach (NatsJSMsg<byte[]> message in messages)
                {
                    await message.AckAsync(cancellationToken: cancellationToken);
                }
            }
        }
        finally
        {
            await SendAcknowledgementsAsync(nats);
        }
    }

    /// <summary>
    /// Acknowledgements are buffered, not waited for, and disposing the connection drops what is still
    /// buffered: a batch stored just before a stop was delivered again to the next consumer (a reading
    /// without a sequence number, stored twice). A round trip sends them first; bounded, because a
    /// server gone while stopping must not hold the process (its batch is then redelivered).
    /// </summary>
    private static async Task SendAcknowledgementsAsync(NatsClient nats)
    {
        using var bound = new CancellationTokenSource(AcknowledgementFlush);
        try
        {
            await nats.PingAsync(bound.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or NATS.Client.Core.NatsException)
        {
            // Unreachable now: what was not acknowledged is delivered again (stored once if it has a sequence number).
        }
    }

    [LoggerMessage(EventId = 1712, Level = LogLevel.Warning, Message = "The JetStream stream {Stream} keeps every reading after it is stored (made by an earlier version, not a work queue): it grows until the NATS server's disk is full. Replace it once this consumer has stored all of it (no pending messages) and the nodes are stopped: 'nats stream rm {Stream}', then start them again.")]
    private static partial void LogStreamKeepsReadings(ILogger logger, string stream);

    [LoggerMessage(EventId = 1710, Level = LogLevel.Warning, Message = "Skipped a message on {Subject} that is not a reading: {Reason}")]
    private static partial void LogBadMessage(ILogger logger, string subject, string reason);
}
