using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// The array overloads check their arguments as every Stream does (Stream.ValidateBufferArguments,
/// as SslStream and NetworkStream): a null buffer is ArgumentNullException, a bad offset or count
/// names itself. Checked on an authenticated stream, where a bad call would otherwise go through.
/// </summary>
public class StreamBufferArgumentTests
{
    /// <summary>
    /// An inner stream that cannot both read and write (opened read-only, or closed already) is refused as
    /// it is wrapped, as SslStream refuses it, naming the parameter. It was taken, and the authentication
    /// threw what its docs do not list: the pipes' NotSupportedException ("Stream does not support writing"),
    /// or, for a closed stream, a handshake failure "on this side", logged at Error and counted as a failure.
    /// </summary>
    [Fact]
    public void AnInnerStreamThatCannotBothReadAndWriteIsRefusedAsItIsWrapped()
    {
        using var readOnly = new MemoryStream(new byte[16], writable: false);
        ArgumentException oneWay = Assert.Throws<ArgumentException>(() => new OssuaryStream(readOnly));
        Assert.Equal("innerStream", oneWay.ParamName);
        Assert.True(readOnly.CanRead); // refused, not taken: the caller still owns it

        var closed = new MemoryStream();
        closed.Dispose();
        Assert.Equal("innerStream", Assert.Throws<ArgumentException>(() => new OssuaryStream(closed, leaveInnerStreamOpen: true)).ParamName);

        XmlDocs.AssertDocumentsThrowing("M:Ossuary.Pipelines.Integrations.OssuaryStream.#ctor(System.IO.Stream,System.Boolean)", oneWay);
    }

    [Fact]
    public async Task ArrayOverloadsValidateTheirArgumentsAsStreamsDo()
    {
        (OssuaryStream server, OssuaryStream client) = await AuthenticatedPairAsync();
        await using (server)
        await using (client)
        {
            byte[] ten = new byte[10];
            Assert.Equal("buffer", Assert.Throws<ArgumentNullException>(() => client.Write(null!, 0, 0)).ParamName);
            Assert.Equal("buffer", Assert.Throws<ArgumentNullException>(() => client.Read(null!, 0, 0)).ParamName);
            Assert.Equal("buffer", (await Assert.ThrowsAsync<ArgumentNullException>(() => client.WriteAsync(null!, 0, 0))).ParamName);
            Assert.Equal("buffer", (await Assert.ThrowsAsync<ArgumentNullException>(() => client.ReadAsync(null!, 0, 0))).ParamName);

            Assert.Equal("offset", Assert.Throws<ArgumentOutOfRangeException>(() => client.Write(ten, -1, 1)).ParamName);
            Assert.Equal("count", Assert.Throws<ArgumentOutOfRangeException>(() => client.Read(ten, 0, -1)).ParamName);
            Assert.Equal("offset", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.ReadAsync(ten, -1, 1))).ParamName);
            Assert.Equal("count", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.WriteAsync(ten, 0, -1))).ParamName);
            Assert.ThrowsAny<ArgumentException>(() => client.Write(ten, 5, 6));
            Assert.ThrowsAny<ArgumentException>(() => client.Read(ten, 11, 0));

            // None of the refused calls sent anything: the server reads only what follows.
            client.Write([42], 0, 1);
            byte[] one = new byte[1];
            await server.ReadExactlyAsync(one).AsTask().Within();
            Assert.Equal(42, one[0]);
        }
    }

    private static async Task<(OssuaryStream Server, OssuaryStream Client)> AuthenticatedPairAsync()
    {
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using var keys = new MutualKeys();
        var options = new OssuaryServerOptions();
        keys.ConfigureServer(options, TimeSpan.FromSeconds(10));
        var server = new OssuaryStream(serverSide);
        var client = new OssuaryStream(clientSide);
        await Task.WhenAll(server.AuthenticateAsServerAsync(options), client.AuthenticateAsClientAsync(keys.ClientOptions())).Within();
        return (server, client);
    }
}
