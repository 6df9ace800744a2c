using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Ossuary.Samples.Telemetry.JetStream;

/// <summary>Creates the readings stream (or updates it to these options); every node and the consumer call it, whoever comes first.</summary>
public static class JetStreamStream
{
    // nats-server's answers when another caller created the same stream between our look and our
    // create: JSStreamNameExistErr, and JSStreamSubjectOverlapErr (the new stream's subjects are
    // checked against every stream, the one just made under the same name included).
    private const int NameInUse = 10058;
    private const int SubjectsOverlap = 10065;

    // JSStreamInvalidConfigF: among others, "stream configuration update can not change retention policy".
    private const int InvalidConfig = 10052;
    private const int Attempts = 5;

    /// <summary>
    /// Ensures the stream exists, as a work queue (a reading leaves it once the store consumer has
    /// acknowledged it) that refuses new readings rather than deleting old ones when it reaches its
    /// limits, with the duplicate window of <paramref name="options"/>. A stream an earlier
    /// version made keeps every reading (limits retention), which nats-server cannot change in place:
    /// that stream is returned as it is, and <see cref="KeepsStoredReadings"/> tells the caller to warn.
    /// </summary>
    /// <exception cref="NatsJSApiException">The server refused the stream: another stream of another name takes its subjects, say.</exception>
    public static async Task<INatsJSStream> EnsureAsync(INatsJSContext js, JetStreamOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(js);
        ArgumentNullException.ThrowIfNull(options);
        var config = new StreamConfig(options.Stream, [options.Subject + ".>"])
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
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await js.CreateOrUpdateStreamAsync(config, cancellationToken);
            }
            catch (NatsJSApiException ex) when (attempt < Attempts && ex.Error.ErrCode is NameInUse or SubjectsOverlap)
            {
                // Nodes starting together race to create it: the next look finds the winner's stream.
                // A stream of another name that really holds these subjects fails every attempt.
                await Task.Delay(TimeSpan.FromMilliseconds(20 * attempt), cancellationToken);
            }
            catch (NatsJSApiException ex) when (ex.Error.ErrCode == InvalidConfig)
            {
                // Refusing it would stop every node and consume at once on upgrade, and consume is
                // what must empty it before it can be replaced: keep using it, and the callers warn.
                INatsJSStream existing = await js.GetStreamAsync(options.Stream, cancellationToken: cancellationToken);
                if (!KeepsStoredReadings(existing))
                {
                    throw;
                }

                return existing;
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
}
