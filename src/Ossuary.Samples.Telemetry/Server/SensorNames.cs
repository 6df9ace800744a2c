using System.Collections.Concurrent;
using System.Text;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>
/// Turns a reading's UTF-8 sensor name into a shared string, so a fleet sending "temp" a million
/// times allocates it once. Bounded: past <see cref="Capacity"/> distinct names (or for a name longer
/// than 64 bytes) a reading gets a string of its own, freed once stored. The name is what the store
/// keeps, so it is never replaced: a device with many names must not rename another device's readings.
/// </summary>
public sealed class SensorNames
{
    /// <summary>How many distinct names are kept.</summary>
    public const int Capacity = 1024;

    /// <summary>What a reading without a <c>sensor=</c> field is shown as.</summary>
    public const string Unnamed = "-";

    private const int MaxSharedLength = 64;

    private readonly ConcurrentDictionary<string, string> _names = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    /// <summary>Creates an empty set of names.</summary>
    public SensorNames() => _lookup = _names.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>The name <paramref name="utf8"/> holds: the shared string while there is room for it, a string of its own past that.</summary>
    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty)
        {
            return Unnamed;
        }

        if (utf8.Length > MaxSharedLength)
        {
            return Encoding.UTF8.GetString(utf8);
        }

        Span<char> chars = stackalloc char[MaxSharedLength];
        chars = chars[..Encoding.UTF8.GetChars(utf8, chars)];
        if (_lookup.TryGetValue(chars, out string? name))
        {
            return name;
        }

        string added = chars.ToString();
        if (_names.Count >= Capacity)
        {
            return added;
        }

        return _names.GetOrAdd(added, added);
    }
}
