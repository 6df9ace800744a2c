namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// Test classes that start telemetry servers run one at a time: OpenTelemetry's meter listener is
/// process-wide, so a /metrics scrape would also report another test's server's instruments of the
/// same meter name (seen: a scrape read another server's 0 readings).
/// </summary>
[CollectionDefinition(Name)]
public sealed class TelemetryServerCollection
{
    public const string Name = "Telemetry servers";
}
