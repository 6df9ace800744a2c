using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// A peer whose socket resets the connection after this side's Disconnect went out: it closed with
/// what we sent still unread (its application never read our last bytes, nor the Disconnect), or
/// aborted. Our goodbye ends the connection, but it was not received, and the input must not say the end was clean.
/// </summary>
public class ResetAfterOurDisconnectTests
{
    [Fact]
    public async Task AClientWhoseServerResetsWithItsLastBytesUnreadIsNotToldTheEndWasClean()
    {
        using var keys = new MutualKeys();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Task<OssuaryClientConnection> connecting = OssuaryClient.ConnectAsync((IPEndPoint)listener.LocalEndpoint, keys.ClientOptions());
        var serverOptions = new OssuarySessionOptions { Role = OssuaryRole.AuthenticatedServer, Identity = keys.Server };
        serverOptions.AuthorizedKeys.Add(keys.Client.PublicKey);
        using var server = new SessionSocketPeer(await listener.AcceptSocketAsync().Within(), new OssuarySession(serverOptions));
        await server.HandshakeAsync();
        await using OssuaryClientConnection client = await connecting.Within();

        byte[] last = new byte[1000];
        await client.Transport.Output.WriteAsync(last).Within();
        await client.Transport.Output.CompleteAsync(); // Disconnect: the client is done

        // The server's socket holds the last frame and the Disconnect, unread; it closes, which sends a reset.
        int expected = last.Length + OssuarySession.DataPacketOverhead + Wire.Control(Wire.Disconnect, error: false).Length;
        await Task.Run(async () =>
        {
            while (server.Socket.Available < expected)
            {
                await Task.Delay(10);
            }
        }).Within();

        server.Socket.Close();

        OssuaryException failure = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(client.Transport.Input));
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failure.Reason);
        Assert.Contains("reset the connection after this side's Disconnect", failure.Message);
    }
}
