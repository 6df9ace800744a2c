using System.Text.Json;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Fuzzing;

/// <summary>
/// The parts of one recorded vector (shared/vectors/ossuary-v1) that the fuzz targets need:
/// each side's configuration, recorded random draws and generation-0 key material, the packets
/// and the call order. Loaded once per process; sessions built from it replay the recorded draws,
/// so they accept the recorded packets and the targets get past the cryptography.
/// </summary>
internal sealed class FuzzVector
{
    private readonly Dictionary<string, FuzzSide> _sides;

    private FuzzVector(string path, JsonElement root)
    {
        Name = Path.GetFileNameWithoutExtension(path);
        SessionKey = Convert.FromHexString(root.GetProperty("session_key").GetString()!);
        Packets = [.. root.GetProperty("packets").EnumerateArray().Select(p => new FuzzPacket(p))];
        Events = [.. root.GetProperty("events").EnumerateArray().Select(e => new FuzzEvent(
            e.GetProperty("side").GetString()!,
            e.GetProperty("call").GetString()!,
            e.TryGetProperty("packet", out JsonElement p) && p.ValueKind == JsonValueKind.Number ? p.GetInt32() : null))];
        _sides = new Dictionary<string, FuzzSide>
        {
            ["client"] = new FuzzSide(root, "client"),
            ["server"] = new FuzzSide(root, "server"),
        };
    }

    public string Name { get; }

    /// <summary>The session key of the first handshake attempt.</summary>
    public byte[] SessionKey { get; }

    public IReadOnlyList<FuzzPacket> Packets { get; }

    public IReadOnlyList<FuzzEvent> Events { get; }

    public FuzzSide Side(string side) => _sides[side];

    public static string Other(string side) => side == "client" ? "server" : "client";

    /// <summary>The recorded packets one side sent, in order.</summary>
    public IEnumerable<FuzzPacket> PacketsFrom(string side) => Packets.Where(p => p.From == side);

    public FuzzPacket Packet(int index) => Packets.Single(p => p.Index == index);

    /// <summary>Every vector in <paramref name="directory"/>, in name order.</summary>
    public static IReadOnlyList<FuzzVector> LoadAll(string directory) =>
        [.. Directory.GetFiles(directory, "*.json").Order(StringComparer.Ordinal)
            .Select(path => new FuzzVector(path, JsonDocument.Parse(File.ReadAllBytes(path)).RootElement))];

    /// <summary>
    /// $OSSUARY_VECTORS_DIR if set, else shared/vectors/ossuary-v1 beside the repository that
    /// holds the running binary (found by walking up to Ossuary.Pipelines.sln).
    /// </summary>
    public static string DefaultDirectory()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable("OSSUARY_VECTORS_DIR");
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            return fromEnvironment;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Ossuary.Pipelines.sln")))
            {
                string vectors = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "vectors", "ossuary-v1"));
                return Directory.Exists(vectors)
                    ? vectors
                    : throw new DirectoryNotFoundException($"The shared test vectors are missing: expected {vectors}.");
            }
        }

        throw new DirectoryNotFoundException("Could not find Ossuary.Pipelines.sln above the binary; set OSSUARY_VECTORS_DIR.");
    }

    public override string ToString() => Name;
}

/// <summary>One side of a vector: configuration, recorded draws and generation-0 material.</summary>
internal sealed class FuzzSide
{
    private readonly OssuaryIdentity? _identity;
    private readonly OssuaryPublicKey[] _authorizedKeys;

    public FuzzSide(JsonElement root, string side)
    {
        JsonElement config = root.GetProperty(side);
        Role = config.GetProperty("connection_type").GetString() switch
        {
            "Client" => OssuaryRole.Client,
            "AuthenticatedServer" => OssuaryRole.AuthenticatedServer,
            "UnauthenticatedServer" => OssuaryRole.UnauthenticatedServer,
            var other => throw new InvalidDataException($"Unknown connection type {other}."),
        };

        // A configured identity is made once and shared by every session of the process (a
        // session never disposes an identity it was given).
        if (config.GetProperty("auth_secret_source").GetString() == "configured")
        {
            _identity = OssuaryIdentity.FromSeed(Convert.FromHexString(config.GetProperty("auth_secret_seed").GetString()!));
        }

        if (config.GetProperty("auth_public_key") is { ValueKind: JsonValueKind.String } publicKey)
        {
            AuthPublicKey = OssuaryPublicKey.Parse(publicKey.GetString()!);
        }

        _authorizedKeys = [.. config.GetProperty("authorized_keys").EnumerateArray().Select(k => OssuaryPublicKey.Parse(k.GetString()!))];
        Draws = [.. root.GetProperty("random_draws").EnumerateArray()
            .Where(d => d.GetProperty("side").GetString() == side)
            .OrderBy(d => d.GetProperty("seq").GetInt32())
            .Select(d => Convert.FromHexString(d.GetProperty("hex").GetString()!))];
        JsonElement generation0 = config.GetProperty("session_material")[0];
        EphemeralSecret = Convert.FromHexString(generation0.GetProperty("ephemeral_secret_raw").GetString()!);
        EphemeralPublic = Convert.FromHexString(generation0.GetProperty("ephemeral_public").GetString()!);
        SessionNonce = Convert.FromHexString(generation0.GetProperty("session_nonce").GetString()!);
    }

    public OssuaryRole Role { get; }

    /// <summary>This side's identity key; null for an anonymous client.</summary>
    public OssuaryPublicKey? AuthPublicKey { get; }

    /// <summary>Trusted servers (client) or admitted clients (authenticated server).</summary>
    public IReadOnlyList<OssuaryPublicKey> AuthorizedKeys => _authorizedKeys;

    public IReadOnlyList<byte[]> Draws { get; }

    public byte[] EphemeralSecret { get; }

    public byte[] EphemeralPublic { get; }

    public byte[] SessionNonce { get; }

    public OssuarySessionOptions Options(TimeProvider time, bool refuseAtOnce)
    {
        var options = new OssuarySessionOptions
        {
            Role = Role,
            Identity = _identity,
            TimeProvider = time,
            RefuseUnauthorizedClientsAtOnce = refuseAtOnce,
        };
        foreach (OssuaryPublicKey key in _authorizedKeys)
        {
            options.AuthorizedKeys.Add(key);
        }

        return options;
    }
}

internal sealed class FuzzPacket
{
    public FuzzPacket(JsonElement packet)
    {
        Index = packet.GetProperty("index").GetInt32();
        From = packet.GetProperty("from").GetString()!;
        Type = packet.GetProperty("type").GetString()!;
        Bytes = Convert.FromHexString(packet.GetProperty("hex").GetString()!);
        if (packet.TryGetProperty("plaintext_hex", out JsonElement data) && data.ValueKind == JsonValueKind.String)
        {
            Plaintext = Convert.FromHexString(data.GetString()!);
        }
        else if (packet.TryGetProperty("decoded", out JsonElement decoded) && decoded.ValueKind == JsonValueKind.Object
            && decoded.TryGetProperty("plaintext", out JsonElement secrets) && secrets.ValueKind == JsonValueKind.String)
        {
            Plaintext = Convert.FromHexString(secrets.GetString()!);
        }
    }

    public int Index { get; }

    public string From { get; }

    public string Type { get; }

    public byte[] Bytes { get; }

    /// <summary>EncryptedData: the application bytes; ServerHandshake and ClientAuthentication: the blob's plaintext.</summary>
    public byte[]? Plaintext { get; }

    public override string ToString() => $"#{Index} {From} {Type}";
}

internal sealed record FuzzEvent(string Side, string Call, int? Packet);
