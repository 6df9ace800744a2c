using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Ossuary.Samples.Telemetry.JetStream;

/// <summary>
/// Creates the readings stream when it is missing, or checks (and where it is safe, completes) the one
/// that exists; every node and the consumer call it, whoever comes first.
/// </summary>
public static class JetStreamStream
{
    // nats-server's answers when another caller created the same stream between our look and our
    // create: JSStreamNameExistErr, and JSStreamSubjectOverlapErr (the new stream's subjects are
    // checked against every stream, the one just made under the same name included).
    private const int NameInUse = 10058;
    private const int SubjectsOverlap = 10065;

    // JSStreamNotFoundErr.
    private const int NotFound = 10059;
    private const int Attempts = 5;

    /// <summary>
    /// Ensures the stream exists. A missing one is created as a work queue (a reading leaves it once the
    /// store consumer has acknowledged it) that refuses new readings rather than deleting old ones when
    /// it reaches its limits, with the duplicate window of <paramref name="options"/>. An existing one
    /// keeps the settings its operator gave it (limits, replicas, placement, ...): only what the sample
    /// relies on is changed, and only where that cannot lose a reading (discard new on a stream without
    /// limits, a duplicate window at least <see cref="JetStreamOptions.DuplicateWindow"/>, the readings'
    /// subjects added to the stream's own when none of these takes them). A stream an
    /// earlier version made keeps every reading (limits retention), which nats-server cannot change in
    /// place: that stream is used as it is, and <see cref="KeepsStoredReadings"/> tells the caller to warn.
    /// </summary>
    /// <exception cref="NatsJSApiException">The server refused the stream: another stream of another name takes its subjects, say.</exception>
    /// <exception cref="InvalidOperationException">
    /// The existing stream has a setting under which JetStream deletes readings it acknowledged before
    /// the store has them (a maximum age, a per-device limit, discard old at a limit, interest retention,
    /// memory storage), or under which it answers no publish (no_ack); the message names it. Nothing is
    /// changed: the operator decides.
    /// </exception>
    public static async Task<INatsJSStream> EnsureAsync(INatsJSContext js, JetStreamOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(js);
        ArgumentNullException.ThrowIfNull(options);
        for (int attempt = 1; ; attempt++)
        {
            INatsJSStream? existing = await FindAsync(js, options.Stream, cancellationToken);
            if (existing is not null)
            {
                // Not CreateOrUpdate with our settings alone: that replaced the whole configuration, and
                // every start removed the limits and replicas an operator had set on the stream.
                return await AdoptAsync(js, existing, options, cancellationToken);
            }

            try
            {
                return await js.CreateStreamAsync(NewConfig(options), cancellationToken);
            }
            catch (NatsJSApiException ex) when (attempt < Attempts && ex.Error.ErrCode is NameInUse or SubjectsOverlap)
            {
                // Nodes starting together race to create it: the next look finds the winner's stream.
                // A stream of another name that really holds these subjects fails every attempt.
                await Task.Delay(TimeSpan.FromMilliseconds(20 * attempt), cancellationToken);
            }
        }
    }

    /// <summary>
    /// True for a stream that keeps readings after the store has them (not a work queue, as one made by
    /// an earlier version of this sample): it grows until the NATS server's disk is full.
    /// </summary>
    public static bool KeepsStoredReadings(INatsJSStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return stream.Info.Config.Retention != StreamConfigRetention.Workqueue;
    }

    private static StreamConfig NewConfig(JetStreamOptions options) => new(options.Stream, [options.Subject + ".>"])
    {
        DuplicateWindow = options.DuplicateWindow,
        Storage = StreamConfigStorage.File,

        // A queue, not an archive: a reading leaves the stream once the store consumer has
        // acknowledged it (it is in the database then). Under the default (limits, none set) the
        // stream kept every reading, growing at the fleet's rate until NATS's disk was full and
        // every node's publishes failed. Readings published before a consumer exists are kept.
        Retention = StreamConfigRetention.Workqueue,

        // At its limits (an operator's max-msgs or max-bytes) the stream refuses a new reading, and
        // the node holds it back until consume makes room. Under the default (discard old) it made
        // room by deleting its oldest readings, unstored, which devices had been told were stored.
        Discard = StreamConfigDiscard.New,
    };

    private static async Task<INatsJSStream?> FindAsync(INatsJSContext js, string name, CancellationToken cancellationToken)
    {
        try
        {
            return await js.GetStreamAsync(name, cancellationToken: cancellationToken);
        }
        catch (NatsJSApiException ex) when (ex.Error.ErrCode == NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// Uses <paramref name="stream"/> with the operator's settings, refusing one that deletes readings
    /// JetStream acknowledged or acknowledges none, and updating only what the sample needs and the change cannot lose.
    /// </summary>
    private static async Task<INatsJSStream> AdoptAsync(INatsJSContext js, INatsJSStream stream, JetStreamOptions options, CancellationToken cancellationToken)
    {
        StreamConfig config = stream.Info.Config;
        if (config.NoAck)
        {
            // The server stores a publish without answering it: a node cannot tell a stored reading
            // from a lost one, and retried each for ever as a NATS outage while its devices waited.
            throw new InvalidOperationException(
                $"The JetStream stream {config.Name} has no_ack: it answers no publish, so a node cannot tell that a reading is stored and would retry each one for ever while its devices wait. Remove that setting ('nats stream edit {config.Name}'), or name another stream; nothing was changed.");
        }

        if (Loses(config) is { } setting)
        {
            throw new InvalidOperationException(
                $"The JetStream stream {config.Name} has {setting}: it deletes readings that JetStream acknowledged (and their devices were told are stored) before consume has stored them. Remove that setting ('nats stream edit {config.Name}'), or name another stream; nothing was changed.");
        }

        bool limited = config.MaxMsgs > 0 || config.MaxBytes > 0;
        bool discardOld = config.Discard != StreamConfigDiscard.New;
        bool shortWindow = config.DuplicateWindow < options.DuplicateWindow;
        string readings = options.Subject + ".>";
        IReadOnlyList<string> subjects = config.Subjects?.ToList() ?? [];
        bool uncovered = !subjects.Any(subject => Covers(subject, readings));
        if (!discardOld && !shortWindow && !uncovered)
        {
            return stream;
        }

        if (uncovered)
        {
            // Added to the operator's, not in their place (as the whole-configuration update did): a
            // stream without them took none of the node's publishes, which it retried for ever as an
            // outage while consume read nothing.
            config.Subjects = [.. subjects, readings];
        }

        // Only these two, in the configuration the server gave: the operator's limits, replicas and the
        // rest go back as they were. Discard old without a limit deletes nothing; discard new keeps it
        // so if a limit is added later. A longer window than ours is the operator's, and kept.
        if (discardOld && !limited)
        {
            config.Discard = StreamConfigDiscard.New;
        }

        if (shortWindow)
        {
            config.DuplicateWindow = options.DuplicateWindow;
        }

        return await js.UpdateStreamAsync(config, cancellationToken);
    }

    /// <summary>
    /// True when every subject <paramref name="pattern"/> matches is one <paramref name="subject"/> (a
    /// stream's, wildcards allowed) matches too: the stream takes those messages already.
    /// </summary>
    internal static bool Covers(string subject, string pattern)
    {
        string[] have = subject.Split('.');
        string[] want = pattern.Split('.');
        for (int i = 0; i < have.Length; i++)
        {
            if (have[i] == ">")
            {
                return i < want.Length;
            }

            if (i >= want.Length || want[i] == ">" || (have[i] != "*" && (want[i] == "*" || have[i] != want[i])))
            {
                return false;
            }
        }

        return have.Length == want.Length;
    }

    /// <summary>The setting of <paramref name="config"/> under which JetStream deletes readings not yet stored, named as the operator sets it; null if none.</summary>
    private static string? Loses(StreamConfig config)
    {
        if (config.MaxAge > TimeSpan.Zero)
        {
            // Readings older than this go, stored or not: a consume down for longer loses them.
            return $"max_age {config.MaxAge}";
        }

        if (config.MaxMsgsPerSubject > 0 && !config.DiscardNewPerSubject)
        {
            // A subject per device: past the limit, nats-server deletes the device's oldest reading to
            // make room (measured on 2.9, discard new notwithstanding) and acknowledges the new one.
            return $"max_msgs_per_subject {config.MaxMsgsPerSubject} (deleting a device's oldest readings)";
        }

        if (config.Discard != StreamConfigDiscard.New && (config.MaxMsgs > 0 || config.MaxBytes > 0))
        {
            return $"discard old with max_msgs {config.MaxMsgs} and max_bytes {config.MaxBytes} (deleting the oldest readings at the limit)";
        }

        if (config.Retention == StreamConfigRetention.Interest)
        {
            // Without the store's consumer (before consume first runs, or after it was removed), nobody
            // is interested: a reading is deleted as soon as it is acknowledged.
            return "retention interest";
        }

        if (config.Storage == StreamConfigStorage.Memory)
        {
            return "storage memory (a restart of the NATS server loses every reading not stored yet)";
        }

        return null;
    }
}
