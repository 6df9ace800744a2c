using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// "Dispose to cancel": an <see cref="OssuaryStream"/> disposed while a read waits on it ends that
/// read with <see cref="ObjectDisposedException"/>, as streams do. It threw the pipe's
/// InvalidOperationException ("Reading is not allowed after reader was completed"), which reads as
/// a bug in the caller or the library.
/// </summary>
public class DisposeUnderReadTests
{
    [Fact]
    public async Task AReadPendingWhenTheStreamIsDisposedEndsWithObjectDisposedException()
    {
        (System.Net.Sockets.NetworkStream serverSide, System.Net.Sockets.NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using var keys = new MutualKeys();
        var options = new OssuaryServerOptions();
        keys.ConfigureServer(options, TimeSpan.FromSeconds(10));
        await using var server = new OssuaryStream(serverSide);
        var client = new OssuaryStream(clientSide);
        await Task.WhenAll(server.AuthenticateAsServerAsync(options), client.AuthenticateAsClientAsync(keys.ClientOptions())).Within();
        Task<int> pending = client.ReadAsync(new byte[16]).AsTask();
        Assert.False(pending.IsCompleted); // the server says nothing: the read waits

        await client.DisposeAsync().AsTask().Within();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => pending.Within());
    }
}
