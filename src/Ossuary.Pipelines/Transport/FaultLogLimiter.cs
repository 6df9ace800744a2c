using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Ossuary.Pipelines.Transport;

/// <summary>
/// Keeps failures that are ours loud without letting one broken setting (a disposed identity fails
/// every connection) fill the log: each cause logs at Error the first time, then at most once a
/// minute, saying how many it held back; those in between log at Debug, exception included.
/// </summary>
internal sealed class FaultLogLimiter
{
    /// <summary>How often one cause may log at Error.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    // Causes are code sites and exception types, a small set; the cap only guards against surprises.
    private const int MaxCauses = 64;

    private readonly ConcurrentDictionary<string, Cause> _causes = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;

    public FaultLogLimiter(TimeProvider time)
    {
        _time = time;
    }

    /// <summary>The level to log this occurrence of <paramref name="cause"/> at, and how many were held back since its last Error.</summary>
    public LogLevel Next(string cause, out int heldBack)
    {
        if (!_causes.TryGetValue(cause, out Cause? entry))
        {
            entry = _causes.Count < MaxCauses ? _causes.GetOrAdd(cause, static _ => new Cause()) : _causes.GetOrAdd("(other)", static _ => new Cause());
        }

        lock (entry)
        {
            long now = _time.GetTimestamp();
            if (entry.LastError is null || _time.GetElapsedTime(entry.LastError.Value, now) >= Interval)
            {
                entry.LastError = now;
                heldBack = entry.HeldBack;
                entry.HeldBack = 0;
                return LogLevel.Error;
            }

            entry.HeldBack++;
            heldBack = 0;
            return LogLevel.Debug;
        }
    }

    private sealed class Cause
    {
        public long? LastError { get; set; }

        public int HeldBack { get; set; }
    }
}
