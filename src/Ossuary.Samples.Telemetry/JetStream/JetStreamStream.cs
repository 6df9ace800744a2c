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
    private const int Attempts = 5;

    /// <summary>Ensures the stream exists with the duplicate window of <paramref name="options"/>.</summary>
    /// <exception cref="NatsJSApiException">The server refused the stream: another stream of another name takes its subjects, say.</exception>
    public static async Task<INatsJSStream> EnsureAsync(INatsJSContext js, JetStreamOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(js);
        ArgumentNullException.ThrowIfNull(options);
        var config = new StreamConfig(options.Stream, [options.Subject + ".>"])
        {
            DuplicateWindow = options.DuplicateWindow,
            Storage = StreamConfigStorage.File,
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
        }
    }
}
