using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// An OssuaryStream used after its disposal says so, as every Stream does, instead of asking to be
/// authenticated (which it was) or failing a new handshake as a fault of this side.
/// </summary>
public class DisposedStreamTests
{
    [Fact]
    public async Task ADisposedStreamThrowsObjectDisposedException()
    {
        var stream = new OssuaryStream(new MemoryStream());
        await stream.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => stream.WriteAsync(new byte[1]).AsTask().Within());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => stream.ReadAsync(new byte[1]).AsTask().Within());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => stream.AuthenticateAsClientAsync(new OssuaryClientOptions { TrustedServerKeys = { StrangerKey.Value } }).Within());
    }

    [Fact]
    public async Task AnAuthenticatedStreamThatWasDisposedThrowsObjectDisposedException()
    {
        (OssuaryStream server, OssuaryStream client) = await AuthenticatedPairAsync();
        await using (server)
        {
            client.Dispose();

            Assert.Throws<ObjectDisposedException>(() => client.Write([1]));
            Assert.Throws<ObjectDisposedException>(() => client.Read(new byte[1]));
        }
    }

    /// <summary>
    /// "Dispose to cancel": a read waiting when the stream is disposed ends with ObjectDisposedException,
    /// as streams do. It threw the pipe's InvalidOperationException ("Reading is not allowed after
    /// reader was completed"), which reads as a bug in the caller or the library.
    /// </summary>
    [Fact]
    public async Task AReadPendingWhenTheStreamIsDisposedEndsWithObjectDisposedException()
    {
        (OssuaryStream server, OssuaryStream client) = await AuthenticatedPairAsync();
        await using (server)
        {
            Task<int> pending = client.ReadAsync(new byte[16]).AsTask();
            Assert.False(pending.IsCompleted); // the server says nothing: the read waits

            await client.DisposeAsync().AsTask().Within();

            await Assert.ThrowsAsync<ObjectDisposedException>(() => pending.Within());
        }
    }

    private static async Task<(OssuaryStream Server, OssuaryStream Client)> AuthenticatedPairAsync()
    {
        (System.Net.Sockets.NetworkStream serverSide, System.Net.Sockets.NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using var keys = new MutualKeys();
        var options = new OssuaryServerOptions();
        keys.ConfigureServer(options, TimeSpan.FromSeconds(10));
        var server = new OssuaryStream(serverSide);
        var client = new OssuaryStream(clientSide);
        await Task.WhenAll(server.AuthenticateAsServerAsync(options), client.AuthenticateAsClientAsync(keys.ClientOptions())).Within();
        return (server, client);
    }
}
