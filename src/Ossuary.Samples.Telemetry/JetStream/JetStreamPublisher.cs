using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Samples.Telemetry.JetStream;

/// <summary>
/// An ingestion node's "store": publishes each batch to JetStream and completes when JetStream has
/// acknowledged every reading (stored in the stream, or recognised as a duplicate by its message id).
/// Behind the same bounded queue as the SQLite store, so a slow or absent NATS server slows the devices:
/// a reading JetStream did not acknowledge (no answer in time, no JetStream to answer, no room in a
/// full stream) is published again until it is, while the queue fills and the connections wait. Any
/// other refusal (a stream whose store failed, say) fails the write, and the node's store with it.
/// </summary>
public sealed partial class JetStreamPublisher : IReadingStore
{
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(5);

    // JSStreamStoreFailedF: a stream at its limits (discard new), or a store that failed.
    private const int StoreFailed = 10077;

    private readonly NatsClient _nats;
    private readonly INatsJSContext _js;
    private readonly JetStreamOptions _options;
    private readonly ILogger _logger;

    // Names this node's readings without a sequence number, so that their ids never meet another node's.
    private readonly string _node = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
    private long _unsequenced;
    private long _duplicates;
    private int _full;
    private int _retrying;

    private JetStreamPublisher(NatsClient nats, JetStreamOptions options, ILogger logger)
    {
        _nats = nats;
        _js = nats.CreateJetStreamContext();
        _options = options;
        _logger = logger;
    }

    /// <summary>
    /// Readings JetStream recognised as already published (a device's resend, possibly through another node).
    /// Not a reading this node published again because JetStream's answer did not come: when that answer
    /// is "duplicate", the copy the stream holds is the node's own first publish, and the reading counts
    /// as published (as does, in the rare case, a device's resend that crossed such an outage).
    /// </summary>
    public long Duplicates => Interlocked.Read(ref _duplicates);

    /// <summary>Connects to NATS and ensures the stream exists.</summary>
    /// <exception cref="NatsException">The NATS server cannot be reached or has no JetStream.</exception>
    public static Task<JetStreamPublisher> ConnectAsync(JetStreamOptions options, CancellationToken cancellationToken = default) =>
        ConnectAsync(options, null, cancellationToken);

    /// <summary>
    /// Connects to NATS and ensures the stream exists; <paramref name="logger"/> hears of NATS outages
    /// (event 1713 when the connection is lost, once an outage, and 1714 when it is back) and of readings
    /// published again meanwhile.
    /// </summary>
    /// <exception cref="NatsException">The NATS server cannot be reached or has no JetStream.</exception>
    public static async Task<JetStreamPublisher> ConnectAsync(JetStreamOptions options, ILogger? logger, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        logger ??= NullLogger.Instance;
        // As consume does: the NATS client reconnects on its own and tells nobody, and the node's only
        // sign of an outage was its retries (1711), which say nothing of a lost server while it is idle.
        NatsClient nats = NatsConnections.Create(options.Url, logger);
        try
        {
            var publisher = new JetStreamPublisher(nats, options, logger);
            INatsJSStream stream = await JetStreamStream.EnsureAsync(publisher._js, options, cancellationToken);
            if (JetStreamStream.KeepsStoredReadings(stream))
            {
                LogStreamKeepsReadings(publisher._logger, options.Stream);
            }

            return publisher;
        }
        catch
        {
            await nats.DisposeAsync();
            throw;
        }
    }

    /// <inheritdoc />
    /// <remarks>A reading JetStream recognised as published already (within its duplicate window) is not counted.</remarks>
    public async ValueTask<int> WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        long duplicatesBefore = Duplicates;

        // Each reading's id is fixed before its first publish and kept for every retry: JetStream then
        // drops a retry whose first publish landed but whose acknowledgement was lost, whatever the reading.
        IReadOnlyList<Outgoing> unacknowledged = batch.Select(reading => new Outgoing(reading, MessageId(reading))).ToArray();
        TimeSpan delay = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            (unacknowledged, int refused) = await PublishAsync(unacknowledged, cancellationToken);
            if (unacknowledged.Count == 0)
            {
                Volatile.Write(ref _retrying, 0); // the next unanswered publish starts another episode
                return batch.Count - (int)(Duplicates - duplicatesBefore); // one writer at a time: these are this batch's
            }

            // An outage is waited out, as a slow disk is: a reading published twice under its id is
            // dropped by JetStream as a duplicate (within the stream's duplicate window). So is a full
            // stream, which consume empties: the devices wait meanwhile, none told its reading is stored.
            if (refused < unacknowledged.Count)
            {
                // At Warning once an episode, then at Debug: an outage's retries come every 5 s for as
                // long as it lasts, and NatsOutageLog says once that the server is lost (1713).
                LogLevel level = Interlocked.Exchange(ref _retrying, 1) == 0 ? LogLevel.Warning : LogLevel.Debug;
                LogRetrying(_logger, level, unacknowledged.Count - refused, delay.TotalSeconds);
            }

            await Task.Delay(delay, cancellationToken);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks));
        }
    }

    /// <summary>
    /// Publishes all of <paramref name="batch"/> at once; returns the readings JetStream did not acknowledge,
    /// for want of an answer or of room in the stream (<c>Refused</c> of them).
    /// </summary>
    private async Task<(IReadOnlyList<Outgoing> Unacknowledged, int Refused)> PublishAsync(IReadOnlyList<Outgoing> batch, CancellationToken cancellationToken)
    {
        // All of the batch in flight at once, then every acknowledgement: one round trip per batch, not per reading.
        var acks = new Task<PubAckResponse>[batch.Count];
        for (int i = 0; i < batch.Count; i++)
        {
            (StoredReading reading, string messageId, _) = batch[i];
            acks[i] = _js.PublishAsync(
                $"{_options.Subject}.{reading.Device}",
                ReadingMessage.Encode(reading),
                opts: new NatsJSPubOpts { MsgId = messageId },
                headers: reading.Untimed ? new NatsHeaders { [ReadingMessage.UntimedHeader] = "1" } : null,
                cancellationToken: cancellationToken).AsTask();
        }

        try
        {
            await Task.WhenAll(acks);
        }
        catch (Exception) when (acks.All(ack => ack.IsCompletedSuccessfully || IsUnanswered(ack.Exception?.InnerException)))
        {
            // Some were not answered: those are published again, below.
        }

        var unacknowledged = new List<Outgoing>();
        ApiError? noRoom = null;
        for (int i = 0; i < acks.Length; i++)
        {
            if (!acks[i].IsCompletedSuccessfully)
            {
                // It may have reached the stream all the same (the answer was lost, not the reading).
                unacknowledged.Add(batch[i] with { Unanswered = true });
                continue;
            }

            PubAckResponse ack = acks[i].Result;
            if (ack.Error is { } error && IsNoRoom(error))
            {
                // The stream is at its limits: held back, as in an outage, until consume makes room.
                noRoom ??= error;
                unacknowledged.Add(batch[i]);
                continue;
            }

            // A duplicate is success here: the reading is in the stream already (EnsureSuccess would throw).
            // After an unanswered publish the copy there is that publish, this node's: published, not a resend.
            if (ack.Duplicate && ack.Error is null)
            {
                if (!batch[i].Unanswered)
                {
                    Interlocked.Increment(ref _duplicates);
                }
            }
            else
            {
                ack.EnsureSuccess();
            }
        }

        int refused = unacknowledged.Count - acks.Count(ack => !ack.IsCompletedSuccessfully);
        if (noRoom is not null)
        {
            // Once per episode: the node goes on trying every few seconds for as long as it lasts.
            if (Interlocked.Exchange(ref _full, 1) == 0)
            {
                LogStreamFull(_logger, _options.Stream, noRoom.ErrCode, noRoom.Description ?? "");
            }
        }
        else if (refused == 0 && unacknowledged.Count < batch.Count && Interlocked.Exchange(ref _full, 0) == 1)
        {
            LogStreamHasRoom(_logger, _options.Stream);
        }

        return (unacknowledged, refused);
    }

    /// <summary>
    /// JetStream refused a reading for want of room: the stream's limits (maximum messages or bytes,
    /// JSStreamStoreFailedF with the limit's own words, and JSStreamMaxStreamBytesExceeded) or the server's
    /// (JSInsufficientResourcesErr, JSStorageResourcesExceededErr). The stream discards new messages when
    /// full (<see cref="JetStreamStream"/>), so this is consume falling behind, or a limit too small: not a
    /// reason to stop the node and lose its queue. JSStreamStoreFailedF also carries a failure of the store
    /// itself (nats-server 2.9: "error opening msg block file ...", a disk error), which no waiting mends:
    /// not room, so the write fails, and the node with it (exit 1, the server's reason in its log).
    /// </summary>
    private static bool IsNoRoom(ApiError error) => error.ErrCode switch
    {
        StoreFailed => error.Description is "maximum messages exceeded" or "maximum bytes exceeded" or "maximum messages per subject exceeded",
        10122 or 10023 or 10047 => true,
        _ => false,
    };

    /// <summary>
    /// The device's key and sequence number, so that a device's resend (through any node) is dropped too;
    /// a reading without one is this node's: named by the node and a count, unique for the stream.
    /// </summary>
    private string MessageId(in StoredReading reading) =>
        ReadingMessage.MessageId(reading)
        ?? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{reading.Device}:{_node}-{Interlocked.Increment(ref _unsequenced)}");

    /// <summary>
    /// No answer (in time, or no JetStream to give one): the server is away, not refusing the reading. So
    /// is NatsTimeoutException, the client's own "Operation timed out" when it could not hand a publish to
    /// the socket within its command timeout (5 s): a batch larger than the connection's buffers, caught
    /// by an outage, gets it for the rest of the batch, which may or may not have left (its id is kept).
    /// </summary>
    private static bool IsUnanswered(Exception? error) =>
        error is NatsJSPublishNoResponseException or NatsNoRespondersException or NatsNoReplyException or NatsConnectionFailedException or NatsTimeoutException;

    [LoggerMessage(EventId = 1711, Message = "JetStream did not acknowledge {Count} reading(s); publishing them again in {Seconds} s (devices wait meanwhile).")]
    private static partial void LogRetrying(ILogger logger, LogLevel level, int count, double seconds);

    [LoggerMessage(EventId = 1715, Level = LogLevel.Error, Message = "The JetStream stream {Stream} is full ({Code}: {Reason}): holding readings back, and the devices with them (none is told its readings are stored), until it has room. Is consume running and keeping up? Otherwise raise the stream's limits or the NATS server's JetStream storage.")]
    private static partial void LogStreamFull(ILogger logger, string stream, int code, string reason);

    [LoggerMessage(EventId = 1716, Level = LogLevel.Information, Message = "The JetStream stream {Stream} has room again; publishing the readings held back.")]
    private static partial void LogStreamHasRoom(ILogger logger, string stream);

    [LoggerMessage(EventId = 1712, Level = LogLevel.Warning, Message = "The JetStream stream {Stream} keeps every reading after it is stored (made by an earlier version, not a work queue): it grows until the NATS server's disk is full. Replace it: stop the nodes, let consume store what is left, then 'nats stream rm {Stream}' and start them again.")]
    private static partial void LogStreamKeepsReadings(ILogger logger, string stream);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _nats.DisposeAsync();

    /// <summary>A reading and its message id; <c>Unanswered</c> once a publish of it went unanswered (and may have landed).</summary>
    private readonly record struct Outgoing(StoredReading Reading, string MessageId, bool Unanswered = false);
}
