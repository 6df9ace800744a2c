using System.Text.Json;

namespace Ossuary.Pipelines.Tests.Vectors;

/// <summary>One recorded session of the original libossuary (format: ../shared/vectors/ossuary-v1/README.md).</summary>
public sealed class TestVector
{
    private TestVector(string path, JsonElement root)
    {
        Path = path;
        Root = root;
        Name = System.IO.Path.GetFileNameWithoutExtension(path);
        if (root.GetProperty("format").GetString() != "ossuary-test-vector/1")
        {
            throw new InvalidDataException($"{Name}: unknown vector format.");
        }

        Packets = [.. root.GetProperty("packets").EnumerateArray().Select(p => new VectorPacket(p))];
        Events = [.. root.GetProperty("events").EnumerateArray().Select(e => new VectorEvent(e))];
    }

    public string Path { get; }

    public string Name { get; }

    public JsonElement Root { get; }

    public IReadOnlyList<VectorPacket> Packets { get; }

    public IReadOnlyList<VectorEvent> Events { get; }

    public JsonElement Side(string side) => Root.GetProperty(side);

    public bool IsBulk => Root.TryGetProperty("bulk", out JsonElement bulk) && bulk.ValueKind == JsonValueKind.Object;

    public VectorPacket Packet(int index) => Packets.Single(p => p.Index == index);

    /// <summary>The recorded random draws of one side, in the order that side drew them.</summary>
    public IEnumerable<byte[]> DrawsOf(string side) => Root.GetProperty("random_draws").EnumerateArray()
        .Where(d => d.GetProperty("side").GetString() == side)
        .OrderBy(d => d.GetProperty("seq").GetInt32())
        .Select(d => Convert.FromHexString(d.GetProperty("hex").GetString()!));

    public static TestVector Load(string path) => new(path, JsonDocument.Parse(File.ReadAllBytes(path)).RootElement);

    /// <summary>The shared vectors beside the repository, plus every *.json under $OSSUARY_VECTORS when it is set.</summary>
    public static IEnumerable<string> AllPaths()
    {
        var paths = new List<string>();
        paths.AddRange(Directory.GetFiles(SharedVectorsDirectory(), "*.json"));
        string? extra = Environment.GetEnvironmentVariable("OSSUARY_VECTORS");
        if (!string.IsNullOrWhiteSpace(extra))
        {
            paths.AddRange(Directory.GetFiles(extra, "*.json", SearchOption.AllDirectories));
        }

        return paths.Select(System.IO.Path.GetFullPath).Distinct().Order(StringComparer.Ordinal);
    }

    public static string SharedVectorsDirectory()
    {
        string vectors = System.IO.Path.Combine(Support.RepositoryPaths.Root(), "..", "shared", "vectors", "ossuary-v1");
        return Directory.Exists(vectors)
            ? vectors
            : throw new DirectoryNotFoundException($"The shared test vectors are missing: expected {vectors}.");
    }

    public override string ToString() => Name;
}

public sealed class VectorPacket
{
    public VectorPacket(JsonElement packet)
    {
        Index = packet.GetProperty("index").GetInt32();
        From = packet.GetProperty("from").GetString()!;
        Type = packet.GetProperty("type").GetString()!;
        Bytes = Convert.FromHexString(packet.GetProperty("hex").GetString()!);
        if (packet.TryGetProperty("plaintext_hex", out JsonElement plaintext) && plaintext.ValueKind == JsonValueKind.String)
        {
            Plaintext = Convert.FromHexString(plaintext.GetString()!);
        }

        if (packet.TryGetProperty("data_index", out JsonElement dataIndex) && dataIndex.ValueKind == JsonValueKind.Number)
        {
            DataIndex = dataIndex.GetInt32();
        }

        if (packet.TryGetProperty("unspecified_byte_ranges", out JsonElement ranges) && ranges.ValueKind == JsonValueKind.Array)
        {
            UnspecifiedRanges = [.. ranges.EnumerateArray().Select(r => (r[0].GetInt32(), r[1].GetInt32()))];
        }
    }

    public int Index { get; }

    public string From { get; }

    public string Type { get; }

    public byte[] Bytes { get; }

    public byte[]? Plaintext { get; }

    public int? DataIndex { get; }

    public IReadOnlyList<(int Start, int End)> UnspecifiedRanges { get; } = [];

    /// <summary>The packet with the bytes the protocol leaves undefined set to zero, for comparison.</summary>
    public byte[] Masked(ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        foreach ((int start, int end) in UnspecifiedRanges)
        {
            // Clamped: a packet of ours that came out shorter than the recorded one is compared (and hashed), not an exception.
            if (start < copy.Length)
            {
                copy.AsSpan(start, Math.Min(end, copy.Length) - start).Clear();
            }
        }

        return copy;
    }
}

public sealed class VectorEvent(JsonElement e)
{
    public int Round { get; } = e.GetProperty("round").GetInt32();

    public string Side { get; } = e.GetProperty("side").GetString()!;

    public string Call { get; } = e.GetProperty("call").GetString()!;

    public int? Packet { get; } = e.TryGetProperty("packet", out JsonElement p) && p.ValueKind == JsonValueKind.Number ? p.GetInt32() : null;

    public string Result { get; } = e.GetProperty("result").GetString()!;

    public bool IsError => Result.StartsWith("Err(", StringComparison.Ordinal);

    public override string ToString() => $"round {Round} {Side} {Call} -> {Result}";
}
