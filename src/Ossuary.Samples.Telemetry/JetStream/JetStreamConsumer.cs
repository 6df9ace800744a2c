using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Ossuary.Samples.Telemetry.JetStream;

/// <summary>
/// Creates the store's durable consumer when it is missing, or checks the one that exists; consume
/// calls it as it starts.
/// </summary>
public static class JetStreamConsumer
{
    // JSConsumerNotFoundErr.
    private const int NotFound = 10014;

    /// <summary>
    /// Ensures the consumer <see cref="JetStreamOptions.Consumer"/> exists on the stream. A missing one is
    /// created with explicit acknowledgement and <paramref name="maxAckPending"/>. An existing one keeps
    /// the settings its operator gave it (ack wait, pending limit, back-off, ...).
    /// </summary>
    /// <exception cref="NatsJSApiException">The server refused the consumer.</exception>
    /// <exception cref="InvalidOperationException">
    /// The existing consumer has a setting under which a reading can go unstored for good (a maximum
    /// number of deliveries, acknowledgement other than explicit, a filter that leaves readings out,
    /// headers only, a deliver subject: a push consumer, which refuses fetches); the message names it.
    /// Nothing is changed: the operator decides.
    /// </exception>
    public static async Task<INatsJSConsumer> EnsureAsync(INatsJSContext js, JetStreamOptions options, int maxAckPending, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(js);
        ArgumentNullException.ThrowIfNull(options);
        INatsJSConsumer? existing = await FindAsync(js, options, cancellationToken);
        if (existing is null)
        {
            // Explicit, not acknowledge-all: a process that died between taking a batch and storing it
            // leaves that batch pending until AckWait, and the next process's first acknowledgement
            // would, under acknowledge-all, acknowledge it too: lost, never stored.
            var config = new ConsumerConfig(options.Consumer) { AckPolicy = ConsumerConfigAckPolicy.Explicit, MaxAckPending = maxAckPending };
            if (options.AckWait is TimeSpan ackWait)
            {
                config.AckWait = ackWait;
            }

            return await js.CreateOrUpdateConsumerAsync(options.Stream, config, cancellationToken);
        }

        // Not CreateOrUpdate with our settings alone: that replaced the whole configuration, and every
        // start of consume put back the ack wait and pending limit an operator had changed.
        ConsumerConfig current = existing.Info.Config;
        if (Loses(current, options.Subject + ".>") is { } setting)
        {
            throw new InvalidOperationException(
                $"The consumer {options.Consumer} on the JetStream stream {options.Stream} has {setting}: under it a reading can go unstored for good. Remove that setting, or the consumer ('nats consumer rm {options.Stream} {options.Consumer}': consume makes it again, and the stream keeps what it holds); nothing was changed.");
        }

        if (options.AckWait is TimeSpan wait && current.AckWait != wait)
        {
            current.AckWait = wait;
            return await js.CreateOrUpdateConsumerAsync(options.Stream, current, cancellationToken);
        }

        return existing;
    }

    private static async Task<INatsJSConsumer?> FindAsync(INatsJSContext js, JetStreamOptions options, CancellationToken cancellationToken)
    {
        try
        {
            return await js.GetConsumerAsync(options.Stream, options.Consumer, cancellationToken);
        }
        catch (NatsJSApiException ex) when (ex.Error.ErrCode == NotFound)
        {
            return null;
        }
    }

    /// <summary>The setting of <paramref name="config"/> under which a reading on <paramref name="readings"/> can go unstored, named as the operator sets it; null if none.</summary>
    private static string? Loses(ConsumerConfig config, string readings)
    {
        if (config.MaxDeliver > 0)
        {
            // A reading the store failed on that often (a full disk, a locked database) is not delivered again.
            return $"max_deliver {config.MaxDeliver}";
        }

        if (config.AckPolicy != ConsumerConfigAckPolicy.Explicit)
        {
            // None: delivered is acknowledged, deleted from the work queue before it is stored. All: one
            // acknowledgement takes the batch a killed consume held with it, unstored.
            return $"ack_policy {config.AckPolicy.ToString().ToLowerInvariant()}";
        }

        IEnumerable<string> filters = [.. config.FilterSubjects ?? [], .. string.IsNullOrEmpty(config.FilterSubject) ? [] : new[] { config.FilterSubject }];
        if (filters.Any() && !filters.Any(filter => JetStreamStream.Covers(filter, readings)))
        {
            // Readings on the subjects it leaves out are never delivered to the store.
            return $"filter_subject {string.Join(", ", filters)}";
        }

        if (!string.IsNullOrEmpty(config.DeliverSubject))
        {
            // A push consumer: JetStream refuses every fetch from it (409 "Consumer is push based"), so no
            // reading is stored; said here with the consumer's name and the way out, not by the first fetch.
            return $"deliver_subject {config.DeliverSubject} (a push consumer: consume fetches, which JetStream refuses on one)";
        }

        if (config.HeadersOnly)
        {
            // Delivered without their data: nothing to store.
            return "headers_only";
        }

        return null;
    }
}
