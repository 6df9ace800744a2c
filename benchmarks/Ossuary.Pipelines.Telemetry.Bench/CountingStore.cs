using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Telemetry.Bench;

/// <summary>
/// A store that only counts readings per device (<c>--no-store</c>): with it the server's CPU per
/// million readings is the transport, the handshake-free record path and the parsing, without SQLite,
/// so the two shares can be told apart. The bench sends no reading twice, so a count is enough for
/// the loss check.
/// </summary>
internal sealed class CountingStore : IReadingStore
{
    private readonly Dictionary<string, long> _readings = new(StringComparer.Ordinal);

    /// <summary>Readings per device key; read only after the server has stopped.</summary>
    public IReadOnlyDictionary<string, long> Readings => _readings;

    public ValueTask<int> WriteAsync(IReadOnlyList<StoredReading> batch, CancellationToken cancellationToken)
    {
        // One writer at a time (IReadingStore's contract), so no lock.
        foreach (StoredReading reading in batch)
        {
            _readings[reading.Device] = _readings.GetValueOrDefault(reading.Device) + 1;
        }

        return ValueTask.FromResult(batch.Count); // the bench sends no reading twice
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
