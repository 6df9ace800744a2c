using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

public class KestrelEchoTests
{
    [Fact]
    public async Task AuthenticatedClientGetsItsBytesBackThroughKestrel()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(serverKey, clientKey);
        var options = new OssuaryClientOptions { Identity = clientKey };
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options);
        await connection.Transport.Output.WriteAsync("hello over ossuary"u8.ToArray());
        byte[] echoed = await PipeReads.ReadExactlyAsync(connection.Transport.Input, 18);

        Assert.Equal("hello over ossuary"u8.ToArray(), echoed);
        Assert.Equal(serverKey.PublicKey, connection.Ossuary.RemotePublicKey);
        IOssuaryConnectionFeature? seen = Assert.Single(server.Log.Features);
        Assert.Equal(clientKey.PublicKey, seen!.RemotePublicKey);
    }

    [Fact]
    public async Task ATransportThatBuffersLessThanAPacketStillCarriesFullPackets()
    {
        using var keys = new MutualKeys();
        await using var server = await OssuaryTestServer.StartEchoAsync(
            o => keys.ConfigureServer(o, TimeSpan.FromSeconds(10)),
            services => services.Configure<SocketTransportOptions>(o => o.MaxReadBufferSize = 4096));
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()).Within();
        byte[] block = System.Security.Cryptography.RandomNumberGenerator.GetBytes(3 * 16384);

        await connection.Transport.Output.WriteAsync(block).AsTask().Within();
        byte[] echoed = await PipeReads.ReadExactlyAsync(connection.Transport.Input, block.Length).Within();

        Assert.Equal(block, echoed);
    }
}
