using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// Interactive trust on first use ("check the key, then type yes") outlasts the server's step
/// timeout: the server resets while the client decides, and the client must answer that Reset
/// instead of sending a ClientAuthentication the server no longer waits for.
/// </summary>
public class SlowTrustDecisionTests
{
    // The server gives up on each handshake step after StepTimeout; the client decides in
    // Decision, far longer, so the server's Reset is waiting when the decision is made, and well
    // before the server stops waiting for the answer to its Reset (3 s after it). Every step of the
    // second handshake must beat StepTimeout: at 300 ms a stall of a loaded CI machine could reset
    // it as well, and a Reset crossing the ClientAuthentication fails the connection.
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Decision = TimeSpan.FromSeconds(3.5);

    [Fact]
    public Task ATrustDecisionSlowerThanTheServersStepTimeoutReHandshakesAndTheConnectionWorks() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(clientKey.PublicKey);
            o.HandshakeStepTimeout = StepTimeout;
        });
        int asked = 0;
        var options = new OssuaryClientOptions
        {
            Identity = clientKey,
            TrustServer = async (key, cancellationToken) =>
            {
                Interlocked.Increment(ref asked);
                await Task.Delay(Decision, cancellationToken);
                return key == serverKey.PublicKey;
            },
        };

        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
        await connection.Transport.Output.WriteAsync("yes, I checked the key"u8.ToArray());

        // Before the fix the handshake "succeeded" on the client alone and this read failed with ConnectionReset.
        Assert.Equal("yes, I checked the key"u8.ToArray(), await PipeReads.ReadExactlyAsync(connection.Transport.Input, 22));
        Assert.Equal(serverKey.PublicKey, connection.Ossuary.RemotePublicKey);
        Assert.Equal(1, Volatile.Read(ref asked)); // the second handshake finds the key trusted
        Assert.Equal(clientKey.PublicKey, Assert.Single(server.Log.Features)!.RemotePublicKey);
    });

    [Fact]
    public Task ASlowRefusalStillEndsWithUntrustedServer() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(clientKey.PublicKey);
            o.HandshakeStepTimeout = StepTimeout;
        });
        var options = new OssuaryClientOptions
        {
            Identity = clientKey,
            TrustServer = async (_, cancellationToken) =>
            {
                await Task.Delay(Decision, cancellationToken);
                return false;
            },
        };

        var refused = await Assert.ThrowsAsync<OssuaryException>(() => OssuaryClient.ConnectAsync(server.EndPoint, options));

        Assert.Equal(OssuaryErrorReason.UntrustedServer, refused.Reason);
    });

    private static Task Run(Func<Task> test) => test().Within();
}
