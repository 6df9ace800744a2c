using System.Globalization;
using System.Text;

namespace Ossuary.Pipelines.Tests.Interop.Original.Differential;

/// <summary>
/// One generated scenario: the two sides' configuration, the messages each sends once
/// established, the faults on the wire and whether the client closes at the end. Everything,
/// the random draws included (<see cref="DrawSeed"/>), follows from <see cref="Seed"/>.
/// </summary>
internal sealed record DiffScenario(
    ulong Seed,
    bool AuthenticatedServer,
    byte[]? ServerSecret,
    byte[]? ClientSecret,
    string[] ClientAuthorized,
    string[] ServerAuthorized,
    bool Tofu,
    byte[][] ClientMessages,
    byte[][] ServerMessages,
    Fault[] Faults,
    bool ClientDisconnect)
{
    /// <summary>OSSUARY_REF_SEED of the original, and the key of our <see cref="SeededDraws"/>.</summary>
    public ulong DrawSeed => Seed;

    /// <summary>ref-peer pair runs the scenarios it can express (no faults); the others need the C driver.</summary>
    public bool UsesRefPeer => Faults.Length == 0 && ClientDisconnect;

    /// <summary>True when the authenticated server does not know the client (anonymous or not on its list).</summary>
    public bool ClientRefused(string? clientPublicKey) =>
        AuthenticatedServer && (clientPublicKey is null || !ServerAuthorized.Contains(clientPublicKey));

    /// <summary>The arguments of <c>ref-peer pair</c> or of the C driver (the same options, plus faults).</summary>
    public IReadOnlyList<string> Arguments()
    {
        var a = new List<string> { "--server-type", AuthenticatedServer ? "auth" : "unauth" };
        if (ServerSecret is not null)
        {
            a.AddRange(["--server-secret", Convert.ToHexStringLower(ServerSecret)]);
        }

        if (ClientSecret is not null)
        {
            a.AddRange(["--client-secret", Convert.ToHexStringLower(ClientSecret)]);
        }

        foreach (string key in ClientAuthorized)
        {
            a.AddRange(["--client-authorized", key]);
        }

        foreach (string key in ServerAuthorized)
        {
            a.AddRange(["--server-authorized", key]);
        }

        if (Tofu)
        {
            a.Add("--tofu");
        }

        foreach (byte[] m in ClientMessages)
        {
            a.AddRange(["--client-send-hex", Convert.ToHexStringLower(m)]);
        }

        foreach (byte[] m in ServerMessages)
        {
            a.AddRange(["--server-send-hex", Convert.ToHexStringLower(m)]);
        }

        foreach (Fault f in Faults)
        {
            a.AddRange(f.Arguments());
        }

        if (ClientDisconnect)
        {
            a.Add("--client-disconnect");
        }

        return a;
    }

    /// <summary>A short description for failure messages (messages by size only).</summary>
    public string Describe()
    {
        var s = new StringBuilder().Append(CultureInfo.InvariantCulture, $"seed {Seed}: {(AuthenticatedServer ? "auth" : "unauth")} server");
        s.Append(ServerSecret is null ? " (random key)" : " (configured key)");
        s.Append(ClientSecret is null ? ", anonymous client" : ", client with key");
        s.Append(CultureInfo.InvariantCulture, $", client trusts {ClientAuthorized.Length} key(s){(Tofu ? ", TOFU" : "")}, server admits {ServerAuthorized.Length}");
        s.Append(CultureInfo.InvariantCulture, $", client sends [{string.Join(',', ClientMessages.Select(m => m.Length))}], server sends [{string.Join(',', ServerMessages.Select(m => m.Length))}]");
        foreach (Fault f in Faults)
        {
            string detail = f.Kind switch
            {
                FaultKind.Corrupt => $" byte {f.Offset} ^{f.Xor:x2}",
                FaultKind.InjectHex => $" {(f.Hex.Length > 40 ? f.Hex[..40] + "…" : f.Hex)}",
                FaultKind.Replay => $" packet {f.Offset}",
                FaultKind.Extend => $" by {f.Offset}",
                FaultKind.Truncate => $" to {f.Offset}",
                _ => "",
            };
            s.Append(CultureInfo.InvariantCulture, $", {f.Kind} on {f.Side} packet {f.Index}{detail}");
        }

        if (ClientDisconnect)
        {
            s.Append(", client disconnects");
        }

        return s.ToString();
    }
}
