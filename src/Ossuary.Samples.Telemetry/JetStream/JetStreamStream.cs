using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Ossuary.Samples.Telemetry.JetStream;

/// <summary>Creates the readings stream (or updates it to these options); every node and the consumer call it, whoever comes first.</summary>
public static class JetStreamStream
{
    /// <summary>Ensures the stream exists with the duplicate window of <paramref name="options"/>.</summary>
    public static async Task<INatsJSStream> EnsureAsync(INatsJSContext js, JetStreamOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(js);
        ArgumentNullException.ThrowIfNull(options);
        return await js.CreateOrUpdateStreamAsync(
            new StreamConfig(options.Stream, [options.Subject + ".>"])
            {
                DuplicateWindow = options.DuplicateWindow,
                Storage = StreamConfigStorage.File,
            },
            cancellationToken);
    }
}
