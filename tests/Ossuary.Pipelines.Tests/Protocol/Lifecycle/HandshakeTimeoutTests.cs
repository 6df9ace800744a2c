using System.Buffers;
using Microsoft.Extensions.Time.Testing;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

/// <summary>PROTOCOL.md, "Timeout": a side waiting more than 3 s for the peer's next handshake packet resets.</summary>
public class HandshakeTimeoutTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void AServerWaitingForClientAuthenticationResetsJustAfterThreeSeconds()
    {
        using SessionPair pair = ServerAwaitingAuthentication();

        _time.Advance(TimeSpan.FromSeconds(3));
        Assert.False(pair.Server.CheckHandshakeTimeout());
        _time.Advance(Tick);
        Assert.True(pair.Server.CheckHandshakeTimeout());

        Assert.Equal((OssuarySessionState.Resetting, OssuaryErrorReason.HandshakeTimeout), (pair.Server.State, pair.Server.LastError));
        byte[] reset = SessionPair.NextPacket(pair.Server);
        Assert.Equal((Wire.Reset, (ushort)0, (byte)1), (Wire.Type(reset), Wire.MessageId(reset), Wire.ErrorFlag(reset)));
    }

    [Fact]
    public void ReceiveReportsTheTimeoutAsAResetAndConsumesNothing()
    {
        using SessionPair pair = ServerAwaitingAuthentication();
        _time.Advance(TimeSpan.FromSeconds(3) + Tick);
        var input = new ReadOnlySequence<byte>(new byte[3]);

        OssuaryReceiveResult result = pair.Server.Receive(input, new ArrayBufferWriter<byte>(), out SequencePosition consumed, out _);

        Assert.Equal((OssuaryReceiveStatus.Reset, OssuaryErrorReason.HandshakeTimeout), (result.Status, result.Reason));
        Assert.Equal(0, input.GetOffset(consumed));
        Assert.Equal(Wire.Reset, Wire.Type(SessionPair.NextPacket(pair.Server)));
    }

    [Fact]
    public void AnAnswerThatHasArrivedIsProcessedEvenIfItCameLate()
    {
        using SessionPair pair = SessionPair.Create(server: o => o.TimeProvider = _time);
        SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));
        SessionPair.Receive(pair.Client, SessionPair.NextPacket(pair.Server));
        byte[] authentication = SessionPair.NextPacket(pair.Client);
        _time.Advance(TimeSpan.FromSeconds(5));

        // The packet is in hand, so nothing is being waited for: establish rather than reset a
        // client that already counts itself established (1,000 busy handshakes hit this).
        OssuaryReceiveResult result = SessionPair.Receive(pair.Server, authentication);

        Assert.Equal(OssuaryReceiveStatus.Handshake, result.Status);
        Assert.True(pair.Server.IsEstablished);
    }

    [Fact]
    public void AClientWaitingForTheServerHandshakeTimesOutToo()
    {
        using SessionPair pair = SessionPair.Create(client: o => o.TimeProvider = _time);
        SessionPair.NextPacket(pair.Client);

        _time.Advance(TimeSpan.FromSeconds(3) + Tick);

        Assert.True(pair.Client.CheckHandshakeTimeout());
        Assert.Equal(Wire.Reset, Wire.Type(SessionPair.NextPacket(pair.Client)));
    }

    [Fact]
    public void AConfiguredTimeoutIsHonoured()
    {
        using SessionPair pair = ServerAwaitingAuthentication(TimeSpan.FromSeconds(10));
        Assert.Equal(TimeSpan.FromSeconds(10), pair.Server.HandshakeTimeRemaining);

        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(TimeSpan.FromSeconds(1), pair.Server.HandshakeTimeRemaining);
        Assert.False(pair.Server.CheckHandshakeTimeout());
        _time.Advance(TimeSpan.FromSeconds(1) + Tick);

        Assert.Equal(TimeSpan.Zero, pair.Server.HandshakeTimeRemaining);
        Assert.True(pair.Server.CheckHandshakeTimeout());
    }

    [Fact]
    public void NoTimeIsLeftExactlyWhenTheWaitIsDue()
    {
        // A caller that sleeps what HandshakeTimeRemaining says and then checks must find the wait due
        // whenever it says zero: on a clock standing still at the limit, "zero left, not due" would spin.
        using SessionPair pair = ServerAwaitingAuthentication(TimeSpan.FromSeconds(10));
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(pair.Server.HandshakeTimeRemaining > TimeSpan.Zero);
        Assert.False(pair.Server.CheckHandshakeTimeout());

        _time.Advance(pair.Server.HandshakeTimeRemaining!.Value);

        Assert.Equal(TimeSpan.Zero, pair.Server.HandshakeTimeRemaining);
        Assert.True(pair.Server.CheckHandshakeTimeout());
    }

    [Fact]
    public void AnEstablishedSessionNeverTimesOut()
    {
        using SessionPair pair = SessionPair.Create(client: o => o.TimeProvider = _time, server: o => o.TimeProvider = _time);
        pair.Pump.Run();

        _time.Advance(TimeSpan.FromHours(1));

        Assert.Null(pair.Server.HandshakeTimeRemaining);
        Assert.False(pair.Server.CheckHandshakeTimeout());
        Assert.False(pair.Client.CheckHandshakeTimeout());
        Assert.True(pair.Client.IsEstablished && pair.Server.IsEstablished);
    }

    [Fact]
    public void TheFifthTimeoutFailsTheConnectionWithAnErrorDisconnect()
    {
        // The client never trusts the server, so each attempt leaves the server waiting for a
        // ClientAuthentication that never comes; the client answers each Reset and tries again.
        using SessionPair pair = SessionPair.Create(clientTrustsServer: false, server: o => o.TimeProvider = _time);
        pair.Pump.Run();

        for (int timeout = 1; timeout <= 5; timeout++)
        {
            Assert.Equal(OssuarySessionState.AwaitingTrust, pair.Client.State);
            _time.Advance(TimeSpan.FromSeconds(3) + Tick);
            Assert.True(pair.Server.CheckHandshakeTimeout());
            pair.Pump.Wire.Clear();
            pair.Pump.Run();
        }

        // The cause survives the fifth reset; later calls report the failure, as the original does.
        Assert.Equal((OssuarySessionState.Closed, OssuaryErrorReason.HandshakeTimeout), (pair.Server.State, pair.Server.LastError));
        OssuaryReceiveResult after = pair.Server.Receive(ReadOnlySequence<byte>.Empty, new ArrayBufferWriter<byte>(), out _, out _);
        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.ConnectionFailed), (after.Status, after.Reason));
        Assert.Equal(5, pair.Server.ResetCount);
        byte[] last = pair.Pump.Wire.First(p => ReferenceEquals(p.From, pair.Server)).Packet;
        Assert.Equal((Wire.Disconnect, (byte)1), (Wire.Type(last), Wire.ErrorFlag(last)));
        Assert.Equal(new OssuaryReceiveResult(OssuaryReceiveStatus.Closed, 0, OssuaryErrorReason.ConnectionFailed), pair.Pump.ClientResults[^1]);
        Assert.Equal(4, pair.Pump.ClientResults.Count(r => r.Reason == OssuaryErrorReason.ConnectionReset));
    }

    /// <summary>A pair whose server has sent its ServerHandshake and waits for the client's answer.</summary>
    private SessionPair ServerAwaitingAuthentication(TimeSpan? timeout = null)
    {
        SessionPair pair = SessionPair.Create(server: o =>
        {
            o.TimeProvider = _time;
            o.HandshakeTimeout = timeout ?? OssuarySessionOptions.DefaultHandshakeTimeout;
        });
        SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));
        SessionPair.NextPacket(pair.Server);
        Assert.Equal(OssuarySessionState.Handshaking, pair.Server.State);
        return pair;
    }
}
