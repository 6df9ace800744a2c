using System.Collections.Concurrent;
using System.Text;

namespace Ossuary.Samples.Telemetry.Server;

/// <summary>
/// Turns a reading's UTF-8 sensor name into a shared string, so a fleet sending "temp" a million
/// times allocates it once. Bounded: past <see cref="Capacity"/> distinct names, new ones read as "(other)".
/// </summary>
public sealed class SensorNames
{
    /// <summary>How many distinct names are kept.</summary>
    public const int Capacity = 1024;

    /// <summary>What a reading without a <c>sensor=</c> field is shown as.</summary>
    public const string Unnamed = "-";

    private const string Overflow = "(other)";
    private const int MaxNameLength = 64;

    private readonly ConcurrentDictionary<string, string> _names = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    /// <summary>Creates an empty set of names.</summary>
    public SensorNames() => _lookup = _names.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>The shared string for <paramref name="utf8"/>.</summary>
    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty)
        {
            return Unnamed;
        }

        if (utf8.Length > MaxNameLength)
        {
            return Overflow;
        }

        Span<char> chars = stackalloc char[MaxNameLength];
        chars = chars[..Encoding.UTF8.GetChars(utf8, chars)];
        if (_lookup.TryGetValue(chars, out string? name))
        {
            return name;
        }

        if (_names.Count >= Capacity)
        {
            return Overflow;
        }

        string added = chars.ToString();
        return _names.GetOrAdd(added, added);
    }
}
