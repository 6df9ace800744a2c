using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.PublicApi;

/// <summary>
/// What the main entry points throw is in the XML docs the package ships (Ossuary.Pipelines.xml),
/// where an IDE shows it: each case makes the call fail for real and looks its exception up there.
/// </summary>
public class DocumentedExceptionsTests
{
    private const string ConnectSocketAsync =
        "M:Ossuary.Pipelines.Integrations.OssuaryClient.ConnectSocketAsync(System.Net.EndPoint,System.TimeSpan,System.Threading.CancellationToken)";

    private const string UseOssuaryWithOptions =
        "M:Ossuary.Pipelines.Integrations.OssuaryConnectionBuilderExtensions.UseOssuary``1(``0,Ossuary.Pipelines.Transport.OssuaryServerOptions)";

    private const string UseOssuaryByName =
        "M:Ossuary.Pipelines.Integrations.OssuaryConnectionBuilderExtensions.UseOssuary``1(``0,System.String)";

    private const string StreamReadAsync =
        "M:Ossuary.Pipelines.Integrations.OssuaryStream.ReadAsync(System.Memory{System.Byte},System.Threading.CancellationToken)";

    private const string StreamRead =
        "M:Ossuary.Pipelines.Integrations.OssuaryStream.Read(System.Byte[],System.Int32,System.Int32)";

    [Fact]
    public async Task ConnectSocketAsyncDocumentsItsArgumentChecks()
    {
        Exception noEndPoint = await Assert.ThrowsAsync<ArgumentNullException>(
            () => OssuaryClient.ConnectSocketAsync(null!, TimeSpan.FromSeconds(30)));
        Exception noTime = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(
            () => OssuaryClient.ConnectSocketAsync(new IPEndPoint(IPAddress.Loopback, 1), TimeSpan.Zero));
        using var closed = new ClosedPort();
        Exception refused = await Assert.ThrowsAsync<SocketException>(
            () => OssuaryClient.ConnectSocketAsync(new IPEndPoint(IPAddress.Loopback, closed.Port), TimeSpan.FromSeconds(30)));

        XmlDocs.AssertDocumentsThrowing(ConnectSocketAsync, noEndPoint, noTime, refused);
    }

    [Fact]
    public void UseOssuaryDocumentsANullArgument()
    {
        using ServiceProvider services = new ServiceCollection().BuildServiceProvider();
        var builder = new ConnectionBuilder(services);

        Exception noOptions = Assert.Throws<ArgumentNullException>(() => builder.UseOssuary((OssuaryServerOptions)null!));
        Exception noName = Assert.Throws<ArgumentNullException>(() => builder.UseOssuary((string)null!));

        XmlDocs.AssertDocumentsThrowing(UseOssuaryWithOptions, noOptions);
        XmlDocs.AssertDocumentsThrowing(UseOssuaryByName, noName);
    }

    [Fact]
    public async Task AStreamReadDocumentsARefusalAndAReadBeforeAuthentication()
    {
        // A server whose allow-list holds another key: the client's handshake completes, and its
        // first read reports the server's refusal (the README's "A refused client finds out on its first read").
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Task server = Task.Run(async () =>
        {
            using TcpClient accepted = await listener.AcceptTcpClientAsync();
            var options = new OssuaryServerOptions { Identity = serverKey }.Shortened(); // its refusal's wait runs out: the client closes last
            options.AuthorizedClientKeys.Add(StrangerKey.Value);
            await using var secure = new OssuaryStream(accepted.GetStream());
            await Assert.ThrowsAsync<OssuaryException>(() => secure.AuthenticateAsServerAsync(options));
        });

        using var client = new TcpClient();
        await client.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        var clientOptions = new OssuaryClientOptions { Identity = clientKey };
        clientOptions.TrustedServerKeys.Add(serverKey.PublicKey);
        await using var stream = new OssuaryStream(client.GetStream());
        Exception early = await Assert.ThrowsAsync<InvalidOperationException>(() => stream.ReadAsync(new byte[16]).AsTask());
        await stream.AuthenticateAsClientAsync(clientOptions).Within();
        Exception refused = await Assert.ThrowsAsync<OssuaryException>(() => stream.ReadAsync(new byte[16]).Within());
        await server.Within();

        Assert.Equal(OssuaryErrorReason.ConnectionFailed, ((OssuaryException)refused).Reason);
        XmlDocs.AssertDocumentsThrowing(StreamReadAsync, early, refused);
        XmlDocs.AssertDocumentsThrowing(StreamRead, early, refused);
    }
}
