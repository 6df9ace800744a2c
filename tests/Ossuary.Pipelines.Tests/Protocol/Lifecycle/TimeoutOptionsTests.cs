using Microsoft.Extensions.Time.Testing;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

/// <summary>The bounds on the reset and trust waits are settings, checked when the session is created.</summary>
public class TimeoutOptionsTests
{
    private readonly FakeTimeProvider _time = new();

    [Theory]
    [InlineData(nameof(OssuarySessionOptions.HandshakeTimeout))]
    [InlineData(nameof(OssuarySessionOptions.ResetTimeout))]
    [InlineData(nameof(OssuarySessionOptions.TrustDecisionTimeout))]
    public void AZeroOrNegativeTimeoutIsRefusedWithItsName(string setting)
    {
        foreach (TimeSpan bad in new[] { TimeSpan.Zero, TimeSpan.FromSeconds(-1), Timeout.InfiniteTimeSpan })
        {
            var options = new OssuarySessionOptions { Role = OssuaryRole.Client };
            typeof(OssuarySessionOptions).GetProperty(setting)!.SetValue(options, bad);

            ArgumentException error = Assert.Throws<ArgumentException>(() => new OssuarySession(options));

            Assert.Contains(setting, error.Message);
        }
    }

    [Fact]
    public void TheDefaultsAreThreeSecondsForAResetAndAMinuteForATrustDecision()
    {
        var options = new OssuarySessionOptions();

        Assert.Equal(TimeSpan.FromSeconds(3), options.ResetTimeout);
        Assert.Equal(TimeSpan.FromMinutes(1), options.TrustDecisionTimeout);
    }

    [Fact]
    public void ConfiguredResetAndTrustTimeoutsAreHonoured()
    {
        using SessionPair pair = SessionPair.Create(
            clientTrustsServer: false,
            client: o => { o.TimeProvider = _time; o.TrustDecisionTimeout = TimeSpan.FromMinutes(10); },
            server: o => { o.TimeProvider = _time; o.ResetTimeout = TimeSpan.FromSeconds(20); });
        SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));
        SessionPair.Receive(pair.Client, SessionPair.NextPacket(pair.Server));
        Assert.Equal(TimeSpan.FromMinutes(10), pair.Client.HandshakeTimeRemaining);

        // The server's own step times out after its 3 s; then it waits 20 s for the answer to its Reset.
        _time.Advance(TimeSpan.FromSeconds(3) + TimeSpan.FromMilliseconds(1));
        Assert.True(pair.Server.CheckHandshakeTimeout());
        Assert.Equal(Wire.Reset, Wire.Type(SessionPair.NextPacket(pair.Server)));
        Assert.Equal(TimeSpan.FromSeconds(20), pair.Server.HandshakeTimeRemaining);
        _time.Advance(TimeSpan.FromSeconds(20));
        Assert.False(pair.Server.CheckHandshakeTimeout());
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(pair.Server.CheckHandshakeTimeout());
        Assert.Equal((OssuarySessionState.Closing, OssuaryErrorReason.HandshakeTimeout), (pair.Server.State, pair.Server.LastError));

        Assert.False(pair.Client.CheckHandshakeTimeout()); // 23 s of its 10 minutes
        Assert.Equal(OssuarySessionState.AwaitingTrust, pair.Client.State);
    }
}
