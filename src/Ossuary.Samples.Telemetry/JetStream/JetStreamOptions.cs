namespace Ossuary.Samples.Telemetry.JetStream;

/// <summary>Where ingestion nodes publish readings and the store consumer reads them: a NATS server with JetStream.</summary>
public sealed class JetStreamOptions
{
    /// <summary>The NATS server, e.g. <c>nats://127.0.0.1:4222</c>.</summary>
    public required string Url { get; init; }

    /// <summary>The stream holding readings. Default <c>TELEMETRY</c>.</summary>
    public string Stream { get; init; } = "TELEMETRY";

    /// <summary>Readings are published on <c>{Subject}.{device key}</c>. Default <c>telemetry.readings</c>.</summary>
    public string Subject { get; init; } = "telemetry.readings";

    /// <summary>
    /// How long JetStream remembers a message id (device + sequence) to drop a resent reading. A device
    /// that resends after longer than this is still stored once: the store is idempotent on (device, seq).
    /// Default 10 minutes.
    /// </summary>
    public TimeSpan DuplicateWindow { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>The durable consumer the store reads through. Default <c>store</c>.</summary>
    public string Consumer { get; init; } = "store";

    /// <summary>
    /// How long JetStream waits for the store consumer to acknowledge a message before it delivers it
    /// again; null (the default) keeps JetStream's 30 s. Internal: for tests of a consumer that died
    /// holding a batch, which need not spend 30 s waiting for its redelivery.
    /// </summary>
    internal TimeSpan? AckWait { get; init; }
}
