using System.Buffers;
using Microsoft.Extensions.Time.Testing;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

/// <summary>
/// The two waits the original leaves unbounded: for the peer's answer to our Reset, and (a
/// client) for the application's trust decision. With their default bounds, a silent peer or a
/// forgotten decision ends the session with Disconnect (error) instead of hanging it forever.
/// </summary>
public class SilentPeerTimeoutTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void AnUnansweredResetClosesTheSessionJustAfterThreeSeconds()
    {
        using SessionPair pair = ServerWaitingForTheAnswerToItsReset(out _);
        Assert.Equal(TimeSpan.FromSeconds(3), pair.Server.HandshakeTimeRemaining);

        _time.Advance(TimeSpan.FromSeconds(3));
        Assert.False(pair.Server.CheckHandshakeTimeout());
        _time.Advance(Tick);
        Assert.True(pair.Server.CheckHandshakeTimeout());

        Assert.Equal((OssuarySessionState.Closing, OssuaryErrorReason.HandshakeTimeout), (pair.Server.State, pair.Server.LastError));
        byte[] farewell = SessionPair.NextPacket(pair.Server);
        Assert.Equal((Wire.Disconnect, (byte)1), (Wire.Type(farewell), Wire.ErrorFlag(farewell)));
        Assert.Equal(OssuarySessionState.Closed, pair.Server.State);
    }

    [Fact]
    public void ReceiveReportsAnUnansweredResetAsClosedWithTheTimeout()
    {
        using SessionPair pair = ServerWaitingForTheAnswerToItsReset(out _);
        _time.Advance(TimeSpan.FromSeconds(3) + Tick);

        OssuaryReceiveResult result = pair.Server.Receive(ReadOnlySequence<byte>.Empty, new ArrayBufferWriter<byte>(), out _, out _);

        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.HandshakeTimeout), (result.Status, result.Reason));
        Assert.Equal(Wire.Disconnect, Wire.Type(SessionPair.NextPacket(pair.Server)));
    }

    [Fact]
    public void AResetAnsweredInTimeLeadsToANewHandshake()
    {
        using SessionPair pair = ServerWaitingForTheAnswerToItsReset(out byte[] reset);
        _time.Advance(TimeSpan.FromSeconds(2));

        pair.Pump.Deliver(reset, pair.Client);
        pair.Pump.Run();

        Assert.True(pair.Client.IsEstablished && pair.Server.IsEstablished);
        Assert.Null(pair.Server.HandshakeTimeRemaining);
    }

    [Fact]
    public void AnUndecidedTrustQuestionClosesTheClientAfterAMinute()
    {
        using SessionPair pair = ClientAwaitingTrust();
        Assert.Equal(TimeSpan.FromMinutes(1), pair.Client.HandshakeTimeRemaining);

        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.False(pair.Client.CheckHandshakeTimeout());
        Assert.Equal(OssuarySessionState.AwaitingTrust, pair.Client.State);
        _time.Advance(Tick);

        // WriteHandshake checks the wait itself: the farewell is a Disconnect (error).
        byte[] farewell = SessionPair.NextPacket(pair.Client);
        Assert.Equal((Wire.Disconnect, (byte)1), (Wire.Type(farewell), Wire.ErrorFlag(farewell)));
        Assert.Equal((OssuarySessionState.Closed, OssuaryErrorReason.HandshakeTimeout), (pair.Client.State, pair.Client.LastError));

        // A decision that comes too late changes nothing.
        pair.Client.AddAuthorizedKey(pair.ServerIdentity.PublicKey);
        Assert.Equal(OssuarySessionState.Closed, pair.Client.State);
        Assert.Empty(SessionPair.NextPacket(pair.Client));
    }

    [Fact]
    public void ATrustDecisionAfterTheMinuteIsTooLateEvenIfNothingCheckedTheWaitMeanwhile()
    {
        using SessionPair pair = ClientAwaitingTrust();
        _time.Advance(TimeSpan.FromMinutes(1) + Tick);

        // No call looked at the clock between the deadline and the decision: the decision still comes too late.
        pair.Client.AddAuthorizedKey(pair.ServerIdentity.PublicKey);
        byte[] farewell = SessionPair.NextPacket(pair.Client);

        Assert.Equal((Wire.Disconnect, (byte)1), (Wire.Type(farewell), Wire.ErrorFlag(farewell)));
        Assert.Equal((OssuarySessionState.Closed, OssuaryErrorReason.HandshakeTimeout), (pair.Client.State, pair.Client.LastError));
    }

    [Fact]
    public void ATrustDecisionInTimeCompletesTheHandshake()
    {
        using SessionPair pair = ClientAwaitingTrust();
        _time.Advance(TimeSpan.FromSeconds(59));

        pair.Client.AddAuthorizedKey(pair.ServerIdentity.PublicKey);
        byte[] authentication = SessionPair.NextPacket(pair.Client);

        Assert.Equal(Wire.ClientAuthentication, Wire.Type(authentication));
        Assert.True(pair.Client.IsEstablished);
        Assert.Null(pair.Client.HandshakeTimeRemaining);
    }

    /// <summary>An established pair whose server has just reset (a replayed msg_id) and written its Reset, which the client never sees.</summary>
    private SessionPair ServerWaitingForTheAnswerToItsReset(out byte[] reset)
    {
        SessionPair pair = SessionPair.Create(server: o => o.TimeProvider = _time);
        pair.Pump.Run();
        byte[] replayed = Wire.WithMessageId(SessionPair.DataPacket(pair.Client, "x"u8), 0);
        Assert.Equal(OssuaryReceiveStatus.Reset, SessionPair.Receive(pair.Server, replayed).Status);
        reset = SessionPair.NextPacket(pair.Server);
        Assert.Equal(Wire.Reset, Wire.Type(reset));
        Assert.Equal(OssuarySessionState.Resetting, pair.Server.State);
        return pair;
    }

    /// <summary>A client paused on a server key it does not trust.</summary>
    private SessionPair ClientAwaitingTrust()
    {
        SessionPair pair = SessionPair.Create(clientTrustsServer: false, client: o => o.TimeProvider = _time);
        SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));
        Assert.Equal(OssuaryReceiveStatus.UntrustedServer, SessionPair.Receive(pair.Client, SessionPair.NextPacket(pair.Server)).Status);
        return pair;
    }
}
