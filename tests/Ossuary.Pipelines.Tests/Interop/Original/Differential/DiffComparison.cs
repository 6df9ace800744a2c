using System.Text.RegularExpressions;

namespace Ossuary.Pipelines.Tests.Interop.Original.Differential;

/// <summary>
/// Compares our run with the original's line by line, in two projections that survive
/// ref-peer's split of stdout and stderr: the packets (PKT lines, in order) and the calls
/// (ROUND, EVT and END lines, in order). Outcomes are compared as the original's API shows them:
/// a byte count, the plaintext, or "an error" (the C API has one error code; the Rust error
/// kinds of ref-peer and our reasons are kept in the lines for the reader, not compared). Reset
/// and Disconnect bodies' len field is masked: the original fills it with an arbitrary value.
/// </summary>
internal static partial class DiffComparison
{
    public static DiffVerdict Compare(OracleRun original, IReadOnlyList<string> ours, IReadOnlyList<Marker> markers)
    {
        List<string> theirPackets = [.. original.Lines.Where(IsPacket).Select(Normalize)];
        List<string> theirCalls = [.. original.Lines.Where(l => !IsPacket(l)).Select(Normalize)];
        List<string> ourPackets = [.. ours.Where(IsPacket).Select(Normalize)];
        List<string> ourCalls = [.. ours.Where(l => !IsPacket(l)).Select(Normalize)];

        int packetDiff = FirstDifference(theirPackets, ourPackets);
        int callDiff = FirstDifference(theirCalls, ourCalls);
        if (original.Panic is not null && (packetDiff < 0 || packetDiff >= theirPackets.Count) && (callDiff < 0 || callDiff >= theirCalls.Count))
        {
            return ComparePanic(original, theirCalls, ourCalls);
        }

        if (packetDiff < 0 && callDiff < 0)
        {
            return new DiffVerdict(DiffVerdict.Identical, false, "");
        }

        foreach (Marker marker in markers.OrderBy(m => m.Line))
        {
            int markerCall = ours.Take(marker.Line).Count(l => !IsPacket(l));
            int markerPacket = ours.Take(marker.Line).Count(IsPacket);
            switch (marker.Kind)
            {
                case KnownDifferences.DataTagLengthChecked
                    when callDiff == markerCall && (packetDiff < 0 || packetDiff >= markerPacket)
                        && theirCalls[callDiff].Contains(" recv_data Ok((", StringComparison.Ordinal) && ourCalls[callDiff].EndsWith(" Err", StringComparison.Ordinal):
                    return new DiffVerdict(marker.Kind, false, $"{marker.Side} refused a data packet whose tag_len is not 16; the original decrypted it");
                case KnownDifferences.HandshakePaddingRefused
                    when callDiff == markerCall && (packetDiff < 0 || packetDiff >= markerPacket)
                        && theirCalls[callDiff].Contains(" recv_handshake Ok(", StringComparison.Ordinal) && ourCalls[callDiff].EndsWith(" recv_handshake Err", StringComparison.Ordinal):
                    return new DiffVerdict(marker.Kind, false, $"{marker.Side} refused a handshake packet longer than its size; the original read it");
                case KnownDifferences.ShortDisconnectFails:
                    {
                        // The runs part at the side's answer: our Disconnect (error), where the original wrote nothing or went on.
                        int answer = NextPacketOf(ours, marker, markerPacket);
                        if (answer >= 0 && packetDiff == answer && callDiff > markerCall
                            && ourPackets[answer] == $"PKT {marker.Side} 0004000000100000xxxx0100"
                            && ours[^1].Contains($"{marker.Side}=Err(ConnectionFailed)", StringComparison.Ordinal))
                        {
                            return new DiffVerdict(marker.Kind, false, $"{marker.Side} ended at a Disconnect cut short; the original dropped it");
                        }

                        break;
                    }

                case KnownDifferences.PeerStartedFifthResetFails:
                    {
                        // The side's next packet is where the runs part: the original's Reset, our Disconnect (error).
                        int answer = NextPacketOf(ours, marker, markerPacket);
                        if (answer >= 0 && packetDiff == answer && callDiff >= markerCall
                            && theirPackets[answer] == $"PKT {marker.Side} 0004000000110000xxxx0100"
                            && ourPackets[answer] == $"PKT {marker.Side} 0004000000100000xxxx0100"
                            && ours[^1].Contains($"{marker.Side}=Err(", StringComparison.Ordinal))
                        {
                            return new DiffVerdict(marker.Kind, false, $"{marker.Side} failed at a fifth reset the peer started");
                        }

                        break;
                    }

                case KnownDifferences.EstablishedDisconnectIsFinal:
                    {
                        // The answer to the Disconnect is the side's next packet: it must match too.
                        int answer = ours.Skip(marker.Line).Select((l, i) => (l, i)).Where(x => x.l.StartsWith($"PKT {marker.Side} ", StringComparison.Ordinal)).Select(x => markerPacket + ours.Skip(marker.Line).Take(x.i).Count(IsPacket)).DefaultIfEmpty(-1).First();
                        bool packetsMatch = packetDiff < 0 || (answer >= 0 && packetDiff > answer);
                        if (callDiff >= markerCall && packetsMatch && ours[^1].Contains($"{marker.Side}=Err(Connection", StringComparison.Ordinal))
                        {
                            return new DiffVerdict(marker.Kind, false, $"{marker.Side} received Disconnect while established");
                        }

                        break;
                    }
            }
        }

        string panic = original.Panic is null ? "" : $"the original panicked later ({original.Panic}).\n";
        return new DiffVerdict(DiffVerdict.Unexplained, true, panic + Explain(packetDiff, theirPackets, ourPackets, callDiff, theirCalls, ourCalls));
    }

    /// <summary>The original's output is a prefix of ours: the call it panicked in must be a clean error in ours.</summary>
    private static DiffVerdict ComparePanic(OracleRun original, List<string> theirCalls, List<string> ourCalls)
    {
        string next = theirCalls.Count < ourCalls.Count ? ourCalls[theirCalls.Count] : "(nothing)";
        return RecvError().IsMatch(next)
            ? new DiffVerdict(KnownDifferences.OriginalPanics, false, $"original: {original.Panic}; ours: {next}")
            : new DiffVerdict(DiffVerdict.Unexplained, true, $"the original panicked ({original.Panic}) where our next line is not a receive error: {next}");
    }

    /// <summary>The index among our packets of the first one <paramref name="marker"/>'s side writes after it, or -1.</summary>
    private static int NextPacketOf(IReadOnlyList<string> ours, Marker marker, int markerPacket) =>
        ours.Skip(marker.Line).Select((l, i) => (l, i)).Where(x => x.l.StartsWith($"PKT {marker.Side} ", StringComparison.Ordinal))
            .Select(x => markerPacket + ours.Skip(marker.Line).Take(x.i).Count(IsPacket)).DefaultIfEmpty(-1).First();

    private static string Explain(int packetDiff, List<string> theirPackets, List<string> ourPackets, int callDiff, List<string> theirCalls, List<string> ourCalls)
    {
        var s = new System.Text.StringBuilder();
        if (packetDiff >= 0)
        {
            s.AppendLine($"first differing packet #{packetDiff}:\n  original: {At(theirPackets, packetDiff)}\n  ours:     {At(ourPackets, packetDiff)}");
        }

        if (callDiff >= 0)
        {
            s.AppendLine($"first differing call line #{callDiff}:");
            for (int i = Math.Max(0, callDiff - 6); i < callDiff; i++)
            {
                s.AppendLine($"  same:     {theirCalls[i]}");
            }

            s.AppendLine($"  original: {At(theirCalls, callDiff)}\n  ours:     {At(ourCalls, callDiff)}");
        }

        return s.ToString();
    }

    private static string At(List<string> lines, int i) => i < lines.Count ? (lines[i].Length > 160 ? lines[i][..160] + "…" : lines[i]) : "(none)";

    private static int FirstDifference(List<string> a, List<string> b)
    {
        int n = Math.Min(a.Count, b.Count);
        for (int i = 0; i < n; i++)
        {
            if (a[i] != b[i])
            {
                return i;
            }
        }

        return a.Count == b.Count ? -1 : n;
    }

    private static bool IsPacket(string line) => line.StartsWith("PKT ", StringComparison.Ordinal);

    /// <summary>Masks what the original leaves arbitrary and reduces errors to "Err".</summary>
    internal static string Normalize(string line)
    {
        if (IsPacket(line))
        {
            string[] p = line.Split(' ');
            string hex = p[2];
            if (hex.Length >= 20 && hex.Substring(8, 3) == "001" && hex[11] is '0' or '1')
            {
                hex = string.Concat(hex.AsSpan(0, 16), "xxxx", hex.AsSpan(20));
            }

            return $"PKT {p[1]} {hex}";
        }

        if (line.StartsWith("END ", StringComparison.Ordinal))
        {
            int server = line.IndexOf(" server=", StringComparison.Ordinal);
            return $"END client={Status(line[11..server])} server={Status(line[(server + 8)..])}";
        }

        return ErrorResult().Replace(line, " Err");
    }

    private static string Status(string s) =>
        s is "Ok(true)" or "Ok(false)" || s.StartsWith("untrusted server ", StringComparison.Ordinal) ? s : "Err";

    [GeneratedRegex(@" Err\(.*$")]
    private static partial Regex ErrorResult();

    [GeneratedRegex(@"^EVT \w+ recv_(handshake|data) Err$")]
    private static partial Regex RecvError();
}
