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
        (SessionSocketPeer server, OssuaryClientConnection client) = await SessionSocketPeer.ServeClientAsync(keys);
        using SessionSocketPeer serverPeer = server;
        await using OssuaryClientConnection clientConnection = client;

        byte[] last = new byte[1000];
        await client.Transport.Output.WriteAsync(last).Within();
        await client.Transport.Output.CompleteAsync(); // Disconnect: the client is done

        // The server's socket holds the last frame and the Disconnect, unread; it closes, which sends a reset.
        int expected = last.Length + OssuarySession.DataPacketOverhead + Wire.Control(Wire.Disconnect, error: false).Length;
        await server.WaitUntilUnreadAsync(expected);
        server.Socket.Close();

        OssuaryException failure = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(client.Transport.Input));
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, failure.Reason);
        Assert.Contains("reset the connection after this side's Disconnect", failure.Message);
    }
}
