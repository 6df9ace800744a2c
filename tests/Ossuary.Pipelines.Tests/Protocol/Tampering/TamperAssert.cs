using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Vectors;

namespace Ossuary.Pipelines.Tests.Protocol.Tampering;

/// <summary>The checks <see cref="TamperingTests"/> applies to one tampered replay.</summary>
internal static class TamperAssert
{
    /// <summary>Each side's plaintexts must be messages its peer sent, in the order sent (some may be missing, none altered).</summary>
    public static void OnlyRecordedPlaintextsInOrder(TamperRun run, string context)
    {
        foreach ((string side, string peer) in new[] { ("client", "server"), ("server", "client") })
        {
            List<byte[]> sent = run.Sent[peer];
            int next = 0;
            foreach (byte[] plaintext in run.Received[side])
            {
                while (next < sent.Count && !sent[next].AsSpan().SequenceEqual(plaintext))
                {
                    next++;
                }

                Assert.True(next < sent.Count, $"{context}\n{side} received a plaintext its peer never sent at that point: {Convert.ToHexStringLower(plaintext)}");
                next++;
            }
        }
    }

    public static void Outcome(TamperExpectation expected, VectorPacket packet, TamperRun baseline, TamperRun run, string context)
    {
        switch (expected.Effect)
        {
            case TamperEffect.Ignored:
                Assert.True(baseline.Log.SequenceEqual(run.Log), $"{context}\nthe protocol ignores this byte, yet the session went differently");
                AssertSameReceived(baseline, run, context);
                Assert.Empty(run.Truncated);
                break;
            case TamperEffect.ErrorFlagFlipped:
                Delivery clean = baseline.Log.Single(d => d.PacketIndex == packet.Index);
                Delivery flipped = run.Log.Single(d => d.PacketIndex == packet.Index);
                Assert.True(clean.Status == OssuaryReceiveStatus.Closed && flipped.Status == OssuaryReceiveStatus.Closed, context);
                Assert.True(flipped.Reason == Opposite(clean.Reason), $"{context}\nexpected {Opposite(clean.Reason)}");
                Assert.True(baseline.Log.Select(Neutral).SequenceEqual(run.Log.Select(Neutral)), $"{context}\nonly the reason may change");
                AssertSameReceived(baseline, run, context);
                break;
            case TamperEffect.DetectedOnArrival:
                DetectedOnArrival(expected, packet, baseline, run, context);
                break;
            case TamperEffect.DetectedLater:
                DetectedLater(expected, packet, baseline, run, context);
                break;
        }
    }

    private static void DetectedOnArrival(TamperExpectation expected, VectorPacket packet, TamperRun baseline, TamperRun run, string context)
    {
        int arrival = run.Log.FindIndex(d => d.PacketIndex == packet.Index);
        Assert.True(arrival >= 0, $"{context}\nthe tampered packet was never read");
        AssertSamePrefix(baseline, run, arrival, context);
        Delivery delivery = run.Log[arrival];
        if (delivery.IsError)
        {
            Assert.True(expected.Reasons.Contains(delivery.Reason), $"{context}\nexpected one of {string.Join(", ", expected.Reasons)}");
            return;
        }

        // A damaged len that asks for more bytes: the receiver must still be stuck at the end (a
        // truncated stream, which the transport reports), or fail once later bytes complete the bogus packet.
        Assert.True(expected.MayTruncate && delivery.Status == OssuaryReceiveStatus.NeedMoreData, $"{context}\nthe receiver accepted the damaged packet");
        bool failedLater = run.Log.Skip(arrival + 1).Any(d => d.Side == delivery.Side && d.IsError);
        Assert.True(run.IsTruncated(delivery.Side) || failedLater, $"{context}\nthe receiver neither failed nor was left holding a partial packet");
    }

    private static void DetectedLater(TamperExpectation expected, VectorPacket packet, TamperRun baseline, TamperRun run, string context)
    {
        int arrival = run.Log.FindIndex(d => d.PacketIndex == packet.Index);
        Assert.True(arrival >= 0, $"{context}\nthe tampered packet was never read");
        int firstError = run.Log.FindIndex(d => d.IsError);
        Assert.True(firstError > arrival, $"{context}\nthe damage should pass its receiver and surface later");

        // Up to the failure the session went exactly as recorded: the damage stayed invisible until it was caught.
        AssertSamePrefix(baseline, run, firstError, context);
        Delivery failure = run.Log[firstError];
        Assert.True(failure.Status == OssuaryReceiveStatus.Reset && expected.Reasons.Contains(failure.Reason),
            $"{context}\nexpected a reset for one of {string.Join(", ", expected.Reasons)}");
    }

    private static void AssertSamePrefix(TamperRun baseline, TamperRun run, int count, string context) =>
        Assert.True(baseline.Log.Count >= count && baseline.Log.Take(count).SequenceEqual(run.Log.Take(count)),
            $"{context}\nthe session changed before the damage arrived");

    private static void AssertSameReceived(TamperRun baseline, TamperRun run, string context)
    {
        foreach (string side in new[] { "client", "server" })
        {
            Assert.True(baseline.Received[side].Count == run.Received[side].Count
                && baseline.Received[side].Zip(run.Received[side]).All(pair => pair.First.AsSpan().SequenceEqual(pair.Second)),
                $"{context}\n{side} did not receive what it received untampered");
        }
    }

    private static OssuaryErrorReason Opposite(OssuaryErrorReason reason) => reason switch
    {
        OssuaryErrorReason.ConnectionClosed => OssuaryErrorReason.ConnectionFailed,
        OssuaryErrorReason.ConnectionFailed => OssuaryErrorReason.ConnectionClosed,
        _ => throw new InvalidOperationException($"{reason} has no opposite"),
    };

    private static Delivery Neutral(Delivery d) => d with { Reason = OssuaryErrorReason.None };
}
