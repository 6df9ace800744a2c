using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

/// <summary>A client that does not know the server's key: the handshake pauses until the application decides.</summary>
public class UntrustedServerTests
{
    [Fact]
    public void TheClientPausesWithTheServersProvenKey()
    {
        using SessionPair pair = SessionPair.Create(clientTrustsServer: false);
        SessionPair.Receive(pair.Server, SessionPair.NextPacket(pair.Client));

        OssuaryReceiveResult result = SessionPair.Receive(pair.Client, SessionPair.NextPacket(pair.Server));

        Assert.Equal((OssuaryReceiveStatus.UntrustedServer, OssuaryErrorReason.UntrustedServer), (result.Status, result.Reason));
        Assert.Equal(OssuarySessionState.AwaitingTrust, pair.Client.State);
        Assert.Equal(pair.ServerIdentity.PublicKey, pair.Client.RemotePublicKey);
        Assert.False(pair.Client.HasPendingOutput);
        Assert.Empty(SessionPair.NextPacket(pair.Client));
    }

    [Fact]
    public void TrustingAnotherKeyDoesNotResumeTheHandshake()
    {
        using SessionPair pair = SessionPair.Create(clientTrustsServer: false);
        pair.Pump.Run();
        using var stranger = OssuaryIdentity.Generate();

        pair.Client.AddAuthorizedKey(stranger.PublicKey);

        Assert.Equal(OssuarySessionState.AwaitingTrust, pair.Client.State);
        Assert.Equal(0, pair.Pump.Run());
    }

    [Fact]
    public void TrustingTheServersKeyCompletesTheHandshakeAndDataFlows()
    {
        using SessionPair pair = SessionPair.Create(clientTrustsServer: false);
        pair.Pump.Run();

        pair.Client.AddAuthorizedKey(pair.Client.RemotePublicKey!);
        Assert.Equal(1, pair.Pump.Run());

        Assert.True(pair.Client.IsEstablished && pair.Server.IsEstablished);
        pair.Pump.Send(pair.Client, "trusted now"u8);
        pair.Pump.Send(pair.Server, "welcome"u8);
        Assert.Equal("trusted now"u8.ToArray(), Assert.Single(pair.Pump.ServerReceived));
        Assert.Equal("welcome"u8.ToArray(), Assert.Single(pair.Pump.ClientReceived));
    }

    [Fact]
    public void AServerTrustedOnFirstUseLeavesNoErrorBehind()
    {
        // LastError is why the session last reset or ended: a pause for the application's decision
        // is neither. It said UntrustedServer for as long as the session lived, and a Receive after
        // Dispose reported the established connection as Closed (UntrustedServer).
        using SessionPair pair = SessionPair.Create(clientTrustsServer: false);
        pair.Pump.Run();
        pair.Client.AddAuthorizedKey(pair.Client.RemotePublicKey!);
        pair.Pump.Run();
        byte[] late = SessionPair.DataPacket(pair.Server, "late"u8);

        Assert.Equal((OssuarySessionState.Established, OssuaryErrorReason.None), (pair.Client.State, pair.Client.LastError));
        pair.Client.Dispose();
        OssuaryReceiveResult afterDispose = SessionPair.Receive(pair.Client, late);
        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.None), (afterDispose.Status, afterDispose.Reason));
    }

    [Fact]
    public void GivingUpWithAnErrorDisconnectFailsBothSides()
    {
        using SessionPair pair = SessionPair.Create(clientTrustsServer: false);
        pair.Pump.Run();

        pair.Client.Disconnect(error: true);
        byte[] disconnect = SessionPair.NextPacket(pair.Client);
        OssuaryReceiveResult serverResult = SessionPair.Receive(pair.Server, disconnect);

        Assert.Equal((Wire.Disconnect, (byte)1), (Wire.Type(disconnect), Wire.ErrorFlag(disconnect)));
        Assert.Equal((OssuaryReceiveStatus.Closed, OssuaryErrorReason.ConnectionFailed), (serverResult.Status, serverResult.Reason));
        Assert.Equal((OssuarySessionState.Closed, OssuaryErrorReason.ConnectionFailed), (pair.Client.State, pair.Client.LastError));
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, pair.Server.LastError);
    }
}
