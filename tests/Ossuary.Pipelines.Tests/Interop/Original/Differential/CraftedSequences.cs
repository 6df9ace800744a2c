namespace Ossuary.Pipelines.Tests.Interop.Original.Differential;

/// <summary>
/// Hand-made adversarial sequences for the differential comparison: on each of the first packets
/// either side writes, whole packets injected behind it (Disconnects cut short or too long, an empty
/// Reset, unknown types, handshake types out of place, oversized headers), its version byte changed,
/// its body cut at every length that matters or padded, earlier packets replayed behind it, or it
/// and the next swapped. The generated scenarios change one byte or inject a well-formed Reset or
/// Disconnect; these reach the length fields, the framing and the message ids on purpose.
/// </summary>
internal static class CraftedSequences
{
    /// <summary>Packets each side writes in the base scenarios whose neighbourhood is attacked.</summary>
    private const int Packets = 6;

    // Whole packets, msg_id 0: Disconnects with bodies of 0, 1, 3 and 5 bytes, a Reset with none,
    // types 0xff, 0x00 and 0x05, headers announcing 16,405 (one byte too many) and 65,535 bytes, and
    // the three handshake types with empty bodies. Not a header that announces a body which never
    // comes: the packets behind it become its body, and the original drops the bytes it read past
    // that body at its next reset, so what each side loses depends on read sizes, not on the protocol
    // (tests/differential/original_pair.c says why it hands one packet at a time).
    private static readonly string[] Injected =
    [
        "0000000000100000", "000100000010000004", "0003000000100000040000", "000500000010000004000000ff",
        "0000000000110000", "0000000000ff0000", "000400000000000004000000", "0004000000050000ffffffff",
        "4015000000200000", "ffff000000200000",
        "0000000000010000", "0000000000020000", "0000000000030000",
    ];

    // Body lengths to cut a packet to: the Disconnect's 4, the blob header's 4, the blob overhead 20,
    // a data packet of 3 bytes' 23, the handshake bodies' 84, 124 and 200, each with its neighbours.
    private static readonly int[] CutTo = [0, 1, 3, 4, 7, 8, 19, 20, 21, 22, 23, 83, 123, 199];

    public static IEnumerable<DiffScenario> All()
    {
        foreach (bool authenticated in new[] { true, false })
        {
            foreach (string side in new[] { "client", "server" })
            {
                for (int at = 0; at < Packets; at++)
                {
                    foreach (Fault[] faults in FaultsAround(side, at))
                    {
                        yield return Base(authenticated, faults);
                    }
                }
            }
        }
    }

    private static IEnumerable<Fault[]> FaultsAround(string side, int at)
    {
        foreach (string hex in Injected)
        {
            yield return [new Fault(side, at, FaultKind.InjectHex, Hex: hex)];
        }

        // Byte 10 is a handshake body's version (a data packet's tag_len).
        yield return [new Fault(side, at, FaultKind.Corrupt, 10, 0x03)];
        foreach (int length in CutTo)
        {
            yield return [new Fault(side, at, FaultKind.Truncate, length)];
        }

        yield return [new Fault(side, at, FaultKind.Extend, 1)];
        yield return [new Fault(side, at, FaultKind.Extend, 16)];
        foreach (int earlier in new[] { 0, at - 1, at }.Where(i => i >= 0).Distinct())
        {
            yield return [new Fault(side, at, FaultKind.Replay, earlier)];
        }

        // Swapped with the next one.
        yield return [new Fault(side, at, FaultKind.Drop), new Fault(side, at + 1, FaultKind.Replay, at)];
    }

    /// <summary>
    /// A handshake that completes, then messages both ways, the client's second one of the most
    /// plaintext a packet carries: an authenticated server that admits the client's key, or an
    /// unauthenticated one and an anonymous client that trusts it on first use.
    /// </summary>
    private static DiffScenario Base(bool authenticated, Fault[] faults)
    {
        byte[] serverSecret = [.. Enumerable.Range(1, 32).Select(i => (byte)i)];
        byte[] clientSecret = [.. Enumerable.Range(101, 32).Select(i => (byte)i)];
        string serverKey = ScenarioGenerator.PublicKeyOf(serverSecret);
        string clientKey = ScenarioGenerator.PublicKeyOf(clientSecret);
        return new DiffScenario(
            authenticated ? 4242UL : 4243UL, authenticated, serverSecret, authenticated ? clientSecret : null,
            authenticated ? [serverKey] : [], authenticated ? [clientKey] : [], Tofu: !authenticated,
            [[1, 2, 3], [.. Enumerable.Repeat((byte)7, Ossuary.Pipelines.Protocol.OssuarySession.MaxPlaintextLength)], [6], []],
            [[8, 9], [10]], faults, ClientDisconnect: false);
    }
}
