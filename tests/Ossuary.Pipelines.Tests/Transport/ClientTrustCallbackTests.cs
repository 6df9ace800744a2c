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
}
