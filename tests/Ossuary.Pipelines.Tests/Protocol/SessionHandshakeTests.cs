using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol;

public class SessionHandshakeTests
{
    [Fact]
    public void MutuallyAuthenticatedSessionsExchangeMessages()
    {
        using var serverIdentity = OssuaryIdentity.Generate();
        using var clientIdentity = OssuaryIdentity.Generate();
        var clientOptions = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = clientIdentity };
        clientOptions.AuthorizedKeys.Add(serverIdentity.PublicKey);
        var serverOptions = new OssuarySessionOptions { Role = OssuaryRole.AuthenticatedServer, Identity = serverIdentity };
        serverOptions.AuthorizedKeys.Add(clientIdentity.PublicKey);
        using var client = new OssuarySession(clientOptions);
        using var server = new OssuarySession(serverOptions);
        var pump = new SessionPump(client, server);

        Assert.Equal(3, pump.Run());

        Assert.True(client.IsEstablished);
        Assert.True(server.IsEstablished);
        Assert.Equal(serverIdentity.PublicKey, client.RemotePublicKey);
        Assert.Equal(clientIdentity.PublicKey, server.RemotePublicKey);
        pump.Send(client, "hello"u8);
        pump.Send(server, "world"u8);
        Assert.Equal("hello"u8.ToArray(), Assert.Single(pump.ServerReceived));
        Assert.Equal("world"u8.ToArray(), Assert.Single(pump.ClientReceived));
    }
}
