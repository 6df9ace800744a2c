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

    // A fetch's own bound. NoWait is answered at once (the messages there are, or none), so it matters only
    // for a fetch whose answer an outage lost: the NATS client gives up on it at its expiry plus 5 s, and
    // with the default, 30 s, consume stored nothing for 35 s from the fetch the outage caught, however
    // soon NATS was back. No idle heartbeat: with one, the client also ends a fetch whose next message is
    // slower than twice it, and the rest of the batch waits out the ack wait (30 s) to be delivered again.
    private static readonly TimeSpan FetchExpiry = TimeSpan.FromSeconds(1);

    // How long a message that is not a reading waits before JetStream delivers it again: it stays in
    // the stream (for a consume that can read it, or the operator), without being fetched in every batch.
    private static readonly TimeSpan HeldRedelivery = TimeSpan.FromMinutes(1);

    // How often consume asks JetStream for the consumer's pending limit (which the operator can change
    // meanwhile, and which sizes each fetch) and about the messages it holds: whether the operator removed some.
    private static readonly TimeSpan HeldCheck = TimeSpan.FromSeconds(1);

    // JSNoMessageFoundErr: the sequence is no longer in the stream.
    private const int NoMessageFound = 10037;

    // JSConsumerNotFoundErr and JSStreamNotFoundErr: the consumer, or its whole stream, was removed.
    private const int ConsumerNotFound = 10014;
    private const int StreamNotFound = 10059;

    private readonly HashSet<ulong> _held = [];
    private long _nextHeldCheck;

    // The consumer's max_ack_pending (0: none) when JetStream was last asked: the operator can change it.
    private long _pendingLimit;

    // Whether the stall the held messages make now was logged (event 1718): once a stall, again after one ends.
    private bool _stallLogged;
    private long _stored;
    private long _duplicates;

    /// <summary>Readings the store did not hold before: stored by this consumer.</summary>
    public long Stored => Interlocked.Read(ref _stored);

    /// <summary>
    /// Readings the store held already, and ignored: a batch redelivered after a consumer stored it and died
    /// before acknowledging it, or a device's resend after JetStream's duplicate window.
    /// </summary>
    public long Duplicates => Interlocked.Read(ref _duplicates);

    /// <summary>
    /// Messages on the readings' subjects that this consumer could not decode (another program's, a newer
    /// version's, a corrupted one): not stored, and left in the stream, unacknowledged, where JetStream
    /// delivers them again every minute, for a consume that can read them or for the operator to remove.
    /// Each is logged once (event 1710, an Error naming its stream sequence) and counted once. JetStream
    /// counts each against the consumer's pending limit (max_ack_pending): when as many are held, it
    /// delivers no reading until some are removed or the limit raised, which is logged (event 1718, an Error,
    /// once a stall, against the limit the consumer has then). One the operator removed from the stream is
    /// no longer counted.
    /// </summary>
    public long Held
    {
        get
        {
            lock (_held)
            {
                return _held.Count;
            }
        }
    }

    /// <summary>Consumes until <paramref name="cancellationToken"/> fires.</summary>
    /// <exception cref="NATS.Client.Core.NatsException">The NATS server cannot be reached or has no JetStream.</exception>
    /// <exception cref="InvalidOperationException">
    /// The stream, or the <c>store</c> consumer, has a setting under which readings can be lost or never
    /// stored (see <see cref="JetStreamStream.EnsureAsync"/> and <see cref="JetStreamConsumer.EnsureAsync"/>); nothing was changed.
    /// </exception>
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
        (INatsJSStream stream, INatsJSConsumer consumer) = await EnsureAsync(js, cancellationToken);
        var batch = new List<StoredReading>(BatchSize);
        var messages = new List<NatsJSMsg<byte[]>>(BatchSize);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                batch.Clear();
                messages.Clear();
                if (Environment.TickCount64 >= _nextHeldCheck)
                {
                    // Busy or idle, at most once a second: the operator may have changed the pending limit,
                    // which sizes each fetch, or removed held messages, which make room under it.
                    if (!await CheckHeldAsync(stream, consumer, atLimit: false, cancellationToken))
                    {
                        (stream, consumer) = await MakeAgainAsync(js, cancellationToken);
                        continue;
                    }
                }

                int room = FetchRoom();
                if (room == 0)
                {
                    // Held messages fill the limit (logged, 1718): a fetch now would only wait out its expiry.
                    await Task.Delay(IdlePoll, cancellationToken);
                    continue;
                }

                await foreach (NatsJSMsg<byte[]> message in consumer.FetchNoWaitAsync<byte[]>(
                    new NatsJSFetchOpts { MaxMsgs = room, Expires = FetchExpiry, IdleHeartbeat = TimeSpan.Zero }, cancellationToken: cancellationToken))
                {
                    messages.Add(message);
                    try
                    {
                        // The id names a reading without a sequence number: a redelivery of it (this process
                        // stored it and died before acknowledging) is then a no-op in the store, not a second row.
                        string? messageId = message.Headers is { } headers && headers.TryGetValue(MessageIdHeader, out var id) ? id.ToString() : null;

                        // A reading its device sent without a timestamp: a resend of it carries another
                        // time of receipt, and is not another reading (a second row, event 1723).
                        bool untimed = message.Headers?.ContainsKey(ReadingMessage.UntimedHeader) == true;
                        batch.Add(ReadingMessage.Decode(message.Data, messageId) with { Untimed = untimed });
                    }
                    catch (FormatException ex)
                    {
                        // Not stored, so not acknowledged: the work queue deletes what is acknowledged,
                        // and this may be a reading a newer version wrote. It is held (below) instead.
                        Hold(message, ex);
                    }
                }

                if (messages.Count == 0)
                {
                    // NoWait returns what is there at once; an empty stream is polled, not waited on for seconds.
                    await Task.Delay(IdlePoll, cancellationToken);
                    continue;
                }

                if (batch.Count > 0)
                {
                    // A reading was delivered: whatever stall there was has ended; the next one is logged again.
                    _stallLogged = false;
                }

                int added = await store.WriteAsync(batch, cancellationToken);
                Interlocked.Add(ref _stored, added);
                Interlocked.Add(ref _duplicates, batch.Count - added);

                // Each message of the batch (one connection, so in order; the acknowledgements are not waited
                // for); one that is not a reading is handed back, to be delivered again later, not deleted.
                foreach (NatsJSMsg<byte[]> message in messages)
                {
                    if (IsHeld(message))
                    {
                        await message.NakAsync(new AckOpts { NakDelay = HeldRedelivery }, cancellationToken);
                    }
                    else
                    {
                        await message.AckAsync(cancellationToken: cancellationToken);
                    }
                }

                if (!_stallLogged && _pendingLimit > 0 && Held >= _pendingLimit)
                {
                    // As many held as the limit last read: a stall, unless the operator removed some or raised it.
                    if (!await CheckHeldAsync(stream, consumer, atLimit: true, cancellationToken))
                    {
                        (stream, consumer) = await MakeAgainAsync(js, cancellationToken);
                    }
                }
            }
        }
        finally
        {
            await SendAcknowledgementsAsync(nats);
            await ForgetRemovedBeforeStoppingAsync(stream);
        }
    }

    /// <summary>The stream and the <c>store</c> consumer, made if missing, as consume starts.</summary>
    private async Task<(INatsJSStream Stream, INatsJSConsumer Consumer)> EnsureAsync(INatsJSContext js, CancellationToken cancellationToken)
    {
        INatsJSStream stream = await JetStreamStream.EnsureAsync(js, options, cancellationToken);
        if (JetStreamStream.KeepsStoredReadings(stream))
        {
            LogStreamKeepsReadings(logger, options.Stream);
        }

        INatsJSConsumer consumer = await JetStreamConsumer.EnsureAsync(js, options, 10 * BatchSize, cancellationToken);
        _pendingLimit = consumer.Info.Config.MaxAckPending;
        return (stream, consumer);
    }

    /// <summary>
    /// The consumer, or its whole stream, was removed under this consume (an operator replacing an old
    /// stream, event 1712, or an acknowledge-all consumer): made again, as at start. A fetch from a removed
    /// consumer is answered "no responders", which the NATS client ends as an empty fetch: without this,
    /// consume looked idle for good while readings piled up in the stream, and said so only at Debug.
    /// </summary>
    private async Task<(INatsJSStream Stream, INatsJSConsumer Consumer)> MakeAgainAsync(INatsJSContext js, CancellationToken cancellationToken)
    {
        LogConsumerRemoved(logger, options.Consumer, options.Stream);

        // A stream made again numbers its messages afresh: a held sequence number could name a reading in
        // it, which would be stored and then handed back instead of acknowledged, for ever. A held message
        // still in the stream is delivered to the new consumer and held again.
        lock (_held)
        {
            _held.Clear();
        }

        _stallLogged = false;
        return await EnsureAsync(js, cancellationToken);
    }

    /// <summary>
    /// How many messages a fetch asks for: the batch, or fewer when the consumer's pending limit leaves less
    /// room beside the held messages (each pending until the operator removes it); 0 when they fill it.
    /// Never more: nats-server 2.9 does not end a fetch that the limit stops before its batch is full, but
    /// keeps it open until its expiry (30 s), so a batch of 1,000 under a limit of 500 stored 500 readings
    /// every 30 s, and a reading let through by a raised limit waited in such a fetch as long.
    /// </summary>
    private int FetchRoom() => _pendingLimit > 0 ? (int)Math.Clamp(_pendingLimit - Held, 0, BatchSize) : BatchSize;

    /// <summary>
    /// Counts and logs <paramref name="message"/> (not a reading) the first time this consumer meets it;
    /// JetStream delivers it again every <see cref="HeldRedelivery"/>, which is not logged again.
    /// </summary>
    private void Hold(NatsJSMsg<byte[]> message, FormatException ex)
    {
        ulong sequence = message.Metadata?.Sequence.Stream ?? 0;
        bool first;
        lock (_held)
        {
            first = _held.Add(sequence);
        }

        if (first)
        {
            LogHeldMessage(logger, sequence, message.Subject, options.Stream, ex.Message);
        }
    }

    /// <summary>
    /// Forgets held messages the operator removed, and logs (event 1718) a stall: held messages are never
    /// acknowledged, so each stays pending, and as many as the consumer's pending limit leave JetStream
    /// handing this consume nothing but them, once a minute, while readings wait in the stream with nothing
    /// else to say why. Read from JetStream each time, not once at start: the operator may have removed held
    /// messages ('nats stream rmm') or changed the limit ('nats consumer edit') since, as event 1718 says to.
    /// </summary>
    /// <returns>False when JetStream says the consumer, or its stream, no longer exists.</returns>
    private async Task<bool> CheckHeldAsync(INatsJSStream stream, INatsJSConsumer consumer, bool atLimit, CancellationToken cancellationToken)
    {
        _nextHeldCheck = Environment.TickCount64 + (long)HeldCheck.TotalMilliseconds;
        ConsumerInfo info;
        try
        {
            await consumer.RefreshAsync(cancellationToken);
            info = consumer.Info;

            // Each held message JetStream still has is pending: fewer pending than held, and some were removed.
            // At the limit each is looked up anyway: a stall is not reported on the count of removed ones.
            if (atLimit || Held > info.NumAckPending)
            {
                await ForgetRemovedAsync(stream, cancellationToken);
            }
        }
        catch (NatsJSApiException ex) when (ex.Error.ErrCode is ConsumerNotFound or StreamNotFound)
        {
            // Removed under this consume: its fetches come back empty, as from an idle stream.
            return false;
        }
        catch (NATS.Client.Core.NatsException ex) when (!cancellationToken.IsCancellationRequested)
        {
            // NATS is away: an outage consume waits out, and which NatsOutageLog says at Warning once,
            // with its cause, and its end at Information (1713, 1717, 1714). Asked again at the next check.
            LogHeldCheckSkipped(logger, options.Consumer, ex.Message);
            return true;
        }

        long limit = info.Config.MaxAckPending;
        _pendingLimit = limit;
        long held = Held;
        // Whether or not a reading waits yet: at the limit none is delivered, now or when one is published.
        bool stalled = limit > 0 && held >= limit;
        if (stalled && !_stallLogged)
        {
            LogHeldFillPendingLimit(logger, held, limit, options.Stream, options.Consumer);
        }

        _stallLogged = stalled;
        return true;
    }

    /// <summary>Forgets the held messages that are no longer in the stream (the operator removed them).</summary>
    private async Task ForgetRemovedAsync(INatsJSStream stream, CancellationToken cancellationToken)
    {
        ulong[] held;
        lock (_held)
        {
            held = [.. _held];
        }

        foreach (ulong sequence in held)
        {
            try
            {
                await stream.GetAsync(new StreamMsgGetRequest { Seq = sequence }, cancellationToken);
            }
            catch (NatsJSApiException ex) when (ex.Error.ErrCode == NoMessageFound)
            {
                lock (_held)
                {
                    _held.Remove(sequence);
                }
            }
        }
    }

    /// <summary>
    /// The stop line says how many held messages are left in the stream: those the operator removed since
    /// the last check are not. Bounded, like the acknowledgements: a server gone while stopping leaves the count as it was.
    /// </summary>
    private async Task ForgetRemovedBeforeStoppingAsync(INatsJSStream stream)
    {
        if (Held == 0)
        {
            return;
        }

        using var bound = new CancellationTokenSource(AcknowledgementFlush);
        try
        {
            await ForgetRemovedAsync(stream, bound.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or NATS.Client.Core.NatsException)
        {
            // Unreachable now: the count is the last one known.
        }
    }

    private bool IsHeld(NatsJSMsg<byte[]> message)
    {
        lock (_held)
        {
            return _held.Contains(message.Metadata?.Sequence.Stream ?? 0);
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

    // An Error: a reading may be in it (a newer node's format, say), and consume cannot store it. Left in the
    // stream, so it stays recoverable; the operator decides (a consume that reads it, or removing it).
    [LoggerMessage(EventId = 1710, Level = LogLevel.Error, Message = "Message {Sequence} on {Subject} is not a reading this consume can store ({Reason}): it is left in the stream, unacknowledged, and delivered again every minute. Store it with a consume that reads it, or remove it: 'nats stream rmm {Stream} {Sequence}'.")]
    private static partial void LogHeldMessage(ILogger logger, ulong sequence, string subject, string stream, string reason);

    // An Error: consume stores nothing more until the operator acts, and devices' readings pile up in the stream.
    [LoggerMessage(EventId = 1718, Level = LogLevel.Error, Message = "{Held} messages that are not readings (event 1710) are held by the consumer {Consumer} of {Stream}, as many as its pending limit (max_ack_pending {Limit}): no reading is delivered to this consume, and readings wait in the stream, until some are removed ('nats stream rmm {Stream} N', for each sequence event 1710 named) or the limit is raised ('nats consumer edit {Stream} {Consumer} --max-pending M').")]
    private static partial void LogHeldFillPendingLimit(ILogger logger, long held, long limit, string stream, string consumer);

    // A Warning: the operator (or a script) removed it, perhaps meaning to; readings the removed stream held are gone with it.
    [LoggerMessage(EventId = 1722, Level = LogLevel.Warning, Message = "The consumer {Consumer} of the JetStream stream {Stream} was removed (or the stream with it) while consume ran; making them again, as at start, so that the readings published from now on are stored.")]
    private static partial void LogConsumerRemoved(ILogger logger, string consumer, string stream);

    [LoggerMessage(EventId = 1719, Level = LogLevel.Debug, Message = "The pending limit and held messages of the consumer {Consumer} could not be checked ({Reason}); checked again in a second.")]
    private static partial void LogHeldCheckSkipped(ILogger logger, string consumer, string reason);
}
