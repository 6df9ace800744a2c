using Microsoft.Extensions.Time.Testing;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

public class ClientTrustCallbackTests
{
    [Fact]
    public async Task ATrustCallbackThatThrowsStillTellsTheServerTheClientGaveUp()
    {
        LinkedPipes link = LinkedPipes.Transparent(out _);
        using var serverKey = OssuaryIdentity.Generate();
        var serverOptions = new OssuaryServerOptions { Identity = serverKey, Mode = OssuaryServerMode.Unauthenticated };
        var clientOptions = new OssuaryClientOptions
        {
            TrustServer = (_, _) => throw new InvalidOperationException("the application refuses this server"),
        };

        Task<OssuaryDuplexPipe> server = OssuaryDuplexPipe.AcceptAsync(link.Server, serverOptions);
        Task<OssuaryDuplexPipe> client = OssuaryDuplexPipe.ConnectAsync(link.Client, clientOptions);

        OssuaryException clientFailure = await Assert.ThrowsAsync<OssuaryException>(() => client.Within());
        Assert.IsType<InvalidOperationException>(clientFailure.InnerException);
        OssuaryException serverFailure = await Assert.ThrowsAsync<OssuaryException>(() => server.Within());
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, serverFailure.Reason); // a Disconnect (error), not a truncated stream
    }

    [Fact]
    public void TheCoresTrustWaitIsTheWholeHandshakesBound()
    {
        // The adapter bounds TrustServer with HandshakeTimeout; the core's own bound on the decision
        // (TrustDecisionTimeout, 1 min by default) must not be tighter, or a callback given longer,
        // for a person to compare a key, would find the session closed when it says yes.
        var time = new FakeTimeProvider();
        using var serverKey = OssuaryIdentity.Generate();
        var clientOptions = new OssuaryClientOptions
        {
            HandshakeTimeout = TimeSpan.FromMinutes(5),
            TimeProvider = time,
            TrustServer = (_, _) => ValueTask.FromResult(true),
        };
        using OssuarySession client = HandshakePlan.ForClient(clientOptions).CreateSession();
        using var server = new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.UnauthenticatedServer, Identity = serverKey, TimeProvider = time });
        SessionPair.Receive(server, SessionPair.NextPacket(client));
        Assert.Equal(OssuaryReceiveStatus.UntrustedServer, SessionPair.Receive(client, SessionPair.NextPacket(server)).Status);

        Assert.Equal(TimeSpan.FromMinutes(5), client.HandshakeTimeRemaining);
        time.Advance(TimeSpan.FromMinutes(2));
        client.AddAuthorizedKey(serverKey.PublicKey);
        Assert.Equal(Wire.ClientAuthentication, Wire.Type(SessionPair.NextPacket(client)));
    }
}
