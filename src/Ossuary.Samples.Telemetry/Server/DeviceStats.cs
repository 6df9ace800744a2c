using Ossuary.Pipelines;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>
/// The running figures of one device. A device may hold several connections at once (the same key
/// twice), so every update takes the device's lock: uncontended, it costs a few nanoseconds.
/// </summary>
public sealed class DeviceStats(OssuaryPublicKey key, TimeProvider time)
{
    private readonly Lock _lock = new();
    private long _readings;
    private long _rejected;
    private long _firstTimestamp;
    private long _lastTimestamp;
    private string? _lastSensor;
    private double _lastValue;
    private int _connections;
    private long _sessions;
    private readonly SequenceWindow _sequences = new();

    /// <summary>The device's proven public key.</summary>
    public OssuaryPublicKey Key { get; } = key;

    /// <summary>
    /// Counts one accepted reading; <paramref name="sequence"/>, when the device numbers its readings, shows gaps and
    /// resends. <paramref name="measurement"/> (<see cref="Storage.ReadingFingerprint"/>'s hash) tells a resend from
    /// another reading under a number the device used before: only the first is a repeat.
    /// </summary>
    public void Record(string sensor, double value, long? sequence = null, ulong measurement = 0)
    {
        long now = time.GetTimestamp();
        lock (_lock)
        {
            if (_readings++ == 0)
            {
                _firstTimestamp = now;
            }

            _lastTimestamp = now;
            _lastSensor = sensor;
            _lastValue = value;
            if (sequence is long seq)
            {
                _sequences.Record(seq, measurement);
            }
        }
    }

    /// <summary>Counts one line that was not a reading.</summary>
    public void Reject()
    {
        lock (_lock)
        {
            _rejected++;
        }
    }

    internal void Connected()
    {
        lock (_lock)
        {
            _connections++;
        }
    }

    internal void Disconnected()
    {
        lock (_lock)
        {
            _connections--;
            _sessions++;
        }
    }

    /// <summary>Adds this device's figures to <paramref name="totals"/>, without copying them.</summary>
    internal FleetTotals AddTo(FleetTotals totals)
    {
        lock (_lock)
        {
            return new FleetTotals(
                totals.Readings + _readings,
                totals.Rejected + _rejected,
                totals.Gaps + _sequences.Gaps,
                totals.Connected + (_connections > 0 ? 1 : 0));
        }
    }

    /// <summary>A consistent copy of the figures.</summary>
    public DeviceSnapshot Snapshot()
    {
        lock (_lock)
        {
            double seconds = time.GetElapsedTime(_firstTimestamp, _lastTimestamp).TotalSeconds;
            double rate = _readings > 1 && seconds > 0 ? (_readings - 1) / seconds : 0;
            return new DeviceSnapshot(Key, _readings, _rejected, rate, _lastSensor, _lastValue, _connections, _sessions, _sequences.Gaps, _sequences.Repeats);
        }
    }
}
