using System.Buffers;
using Ossuary.Pipelines.Fuzzing;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Tests.Fuzz;

/// <summary>
/// Replays the fuzz targets (the same code tests/fuzz runs under AFL++) on their seed corpora and
/// on every crash or hang the fuzzer found, so a fixed bug stays fixed. A finding is added here as
/// hex with the target it came from, plus a readable test of the behaviour it exposed.
/// </summary>
public sealed class FuzzRegressionTests
{
    public static TheoryData<string> Targets() => [.. FuzzTargets.Names];

    /// <summary>Inputs that crashed a target before the fix named in the comment.</summary>
    public static TheoryData<string, string> Findings() => new()
    {
        // handshake-server, the first fuzz run: five handshake timeouts; the fifth closed the
        // session, yet Receive reported Reset (see FifthHandshakeTimeoutReportsClosed).
        {
            FuzzTargets.HandshakeServer,
            "729b4d33032d2d5c5c5c5c5c5c2d2d2d2d00000c0004001700110000040001bc8fc8babf89fac7350b00005c00540000" +
            "00010000540000010000000000005c0054000000010000540000010000000024c72911bf2f1b20a14ad01a87fe135256" +
            "bb14623abe0988f50084007c0001000300007c00010000f0e6006000100504c80200032d2d2d2d2d2d00000c00040000" +
            "0011000004000100027f0300005c005400032d2d5c5c5c5c5c5c2d2d2d2d00000c00040000001100010100006400ffff" +
            "2dbd"
        },
    };

    [Theory]
    [MemberData(nameof(Targets))]
    public void EverySeedRunsCleanly(string target)
    {
        int seeds = 0;
        foreach ((string name, byte[] input) in FuzzSeeds.For(target))
        {
            FuzzOutcome outcome = RunOrFail(target, input, name);
            Assert.True(outcome.Receives > 0, $"{target}/{name} never called Receive");
            seeds++;
        }

        Assert.True(seeds >= 10, $"{target} has only {seeds} seeds");
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void SeedsReachEstablishedSessionsAndData(string target)
    {
        FuzzOutcome[] outcomes = [.. FuzzSeeds.For(target).Select(seed => RunOrFail(target, seed.Input, seed.Name))];
        Assert.Contains(outcomes, o => o.WasEstablished && o.DataResults > 0);
        if (target != FuzzTargets.Records)
        {
            Assert.Contains(outcomes, o => o.Resets > 0);
        }
    }

    [Theory]
    [MemberData(nameof(Findings))]
    public void FuzzFindingStaysFixed(string target, string hex) =>
        RunOrFail(target, Convert.FromHexString(hex), "finding");

    /// <summary>
    /// Found by handshake-server: when the fifth reset of a connection is a handshake timeout,
    /// the session closes (Disconnect with error), so Receive must say Closed, not Reset ("it will
    /// handshake again"), or an adapter waits for a re-handshake that never comes.
    /// </summary>
    [Fact]
    public void FifthHandshakeTimeoutReportsClosed()
    {
        var clock = new FuzzClock();
        using var server = new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.UnauthenticatedServer, TimeProvider = clock });
        var plaintext = new ArrayBufferWriter<byte>();
        var output = new ArrayBufferWriter<byte>();
        for (int reset = 1; reset < 5; reset++)
        {
            clock.Advance(TimeSpan.FromSeconds(4));
            OssuaryReceiveResult timedOut = server.Receive(ReadOnlySequence<byte>.Empty, plaintext, out _, out _);
            Assert.Equal(new OssuaryReceiveResult(OssuaryReceiveStatus.Reset, 0, OssuaryErrorReason.HandshakeTimeout), timedOut);
            Assert.True(server.WriteHandshake(output) > 0); // our Reset
            var peerReset = new ReadOnlySequence<byte>(FuzzTargets.ControlPacket(OssuaryProtocolLimits.Reset, error: true));
            Assert.Equal(OssuaryReceiveStatus.Handshake, server.Receive(peerReset, plaintext, out _, out _).Status);
            Assert.Equal(OssuarySessionState.Handshaking, server.State);
        }

        clock.Advance(TimeSpan.FromSeconds(4));
        OssuaryReceiveResult fifth = server.Receive(ReadOnlySequence<byte>.Empty, plaintext, out _, out _);
        Assert.Equal(new OssuaryReceiveResult(OssuaryReceiveStatus.Closed, 0, OssuaryErrorReason.HandshakeTimeout), fifth); // the cause, then ConnectionFailed
        Assert.Equal(OssuarySessionState.Closing, server.State);
        output.Clear();
        server.WriteHandshake(output);
        Assert.Equal(OssuaryProtocolLimits.Disconnect, (ushort)((output.WrittenSpan[4] << 8) | output.WrittenSpan[5]));
        Assert.Equal(1, output.WrittenSpan[10]); // error flag
    }

    private static FuzzOutcome RunOrFail(string target, byte[] input, string name)
    {
        try
        {
            return FuzzTargets.Run(target, input);
        }
        catch (FuzzInvariantException e)
        {
            Assert.Fail($"{target}/{name} broke an invariant: {e.Message}\ninput: {Convert.ToHexString(input)}");
            throw;
        }
    }
}
