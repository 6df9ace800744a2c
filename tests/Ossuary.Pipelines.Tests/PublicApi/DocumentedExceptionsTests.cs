using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

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

    /// <summary>
    /// The key-file and trust-file functions checked their arguments (an empty path, a path no file can have,
    /// a null key, a disposed identity) and <c>IsAccessibleByOthers</c> let a missing file's exception through,
    /// but their XML docs listed none of these: a caller writing a <c>catch</c> from the docs missed them.
    /// </summary>
    [Fact]
    public async Task TheKeyAndTrustFileFunctionsDocumentTheirArgumentChecks()
    {
        string folder = Directory.CreateTempSubdirectory("ossuary-documented-").FullName;
        try
        {
            using var identity = OssuaryIdentity.Generate();
            var disposed = OssuaryIdentity.Generate();
            disposed.Dispose();
            string missing = Path.Combine(folder, "missing.key");
            string noFileCanHave = Path.Combine(folder, "a\0b.key");

            XmlDocs.AssertDocumentsThrowing(
                "M:Ossuary.Pipelines.Trust.OssuarySecretKeyFile.IsAccessibleByOthers(System.String)",
                Assert.ThrowsAny<IOException>(() => OssuarySecretKeyFile.IsAccessibleByOthers(missing)),
                Assert.ThrowsAny<ArgumentException>(() => OssuarySecretKeyFile.IsAccessibleByOthers("")));
            XmlDocs.AssertDocumentsThrowing(
                "M:Ossuary.Pipelines.Trust.OssuarySecretKeyFile.Read(System.String)",
                Assert.ThrowsAny<ArgumentException>(() => OssuarySecretKeyFile.Read("")),
                Assert.ThrowsAny<ArgumentException>(() => OssuarySecretKeyFile.Read(null!)));
            XmlDocs.AssertDocumentsThrowing(
                "M:Ossuary.Pipelines.Trust.OssuarySecretKeyFile.Write(System.String,Ossuary.Pipelines.OssuaryIdentity)",
                Assert.ThrowsAny<ArgumentException>(() => OssuarySecretKeyFile.Write("", identity)),
                Assert.ThrowsAny<ArgumentException>(() => OssuarySecretKeyFile.Write(noFileCanHave, identity)),
                Assert.ThrowsAny<ArgumentException>(() => OssuarySecretKeyFile.Write(missing, null!)),
                Assert.Throws<ObjectDisposedException>(() => OssuarySecretKeyFile.Write(missing, disposed)));
            Assert.False(File.Exists(missing));
            XmlDocs.AssertDocumentsThrowing(
                "M:Ossuary.Pipelines.Trust.OssuaryAuthorizedKeys.Load(System.String)",
                Assert.ThrowsAny<ArgumentException>(() => OssuaryAuthorizedKeys.Load("")),
                Assert.ThrowsAny<ArgumentException>(() => OssuaryAuthorizedKeys.Load(noFileCanHave)));
            XmlDocs.AssertDocumentsThrowing(
                "M:Ossuary.Pipelines.Trust.OssuaryKnownHosts.Load(System.String)",
                Assert.ThrowsAny<ArgumentException>(() => OssuaryKnownHosts.Load("")),
                Assert.ThrowsAny<ArgumentException>(() => OssuaryKnownHosts.Load(noFileCanHave)));

            OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(Path.Combine(folder, "known_hosts"));
            XmlDocs.AssertDocumentsThrowing(
                "M:Ossuary.Pipelines.Trust.OssuaryKnownHosts.Check(System.String,System.Int32,Ossuary.Pipelines.OssuaryPublicKey)",
                Assert.ThrowsAny<ArgumentException>(() => hosts.Check("", 7400, identity.PublicKey)),
                Assert.ThrowsAny<ArgumentException>(() => hosts.Check("gateway", 7400, null!)));
            XmlDocs.AssertDocumentsThrowing(
                "M:Ossuary.Pipelines.Trust.OssuaryKnownHosts.CheckAsync(System.String,System.Int32,Ossuary.Pipelines.OssuaryPublicKey,System.Threading.CancellationToken)",
                await Assert.ThrowsAnyAsync<ArgumentException>(() => hosts.CheckAsync("", 7400, identity.PublicKey).AsTask()));
            XmlDocs.AssertDocumentsThrowing(
                "M:Ossuary.Pipelines.Trust.OssuaryKnownHosts.Find(System.String,System.Int32)",
                Assert.ThrowsAny<ArgumentException>(() => hosts.Find("", 7400)));

            XmlDocs.AssertDocumentsThrowing(
                "M:Ossuary.Pipelines.OssuaryIdentity.CopySeedTo(System.Span{System.Byte})",
                Assert.Throws<ObjectDisposedException>(() => disposed.CopySeedTo(new byte[OssuaryIdentity.SeedSize])),
                Assert.ThrowsAny<ArgumentException>(() => identity.CopySeedTo(new byte[OssuaryIdentity.SeedSize - 1])));
            XmlDocs.AssertDocumentsThrowing(
                "M:Ossuary.Pipelines.OssuaryIdentity.TryFormatSeedHex(System.Span{System.Char},System.Int32@)",
                Assert.Throws<ObjectDisposedException>(() => disposed.TryFormatSeedHex(new char[2 * OssuaryIdentity.SeedSize], out _)));
            XmlDocs.AssertDocumentsThrowing(
                "M:Ossuary.Pipelines.OssuaryPublicKey.CopyTo(System.Span{System.Byte})",
                Assert.ThrowsAny<ArgumentException>(() => identity.PublicKey.CopyTo(new byte[OssuaryPublicKey.Size - 1])));
            XmlDocs.AssertDocumentsThrowing(
                "M:Ossuary.Pipelines.OssuaryPublicKey.Parse(System.String)",
                Assert.ThrowsAny<ArgumentException>(() => OssuaryPublicKey.Parse(null!)));

            using var session = new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.Client });
            XmlDocs.AssertDocumentsThrowing(
                "M:Ossuary.Pipelines.Protocol.OssuarySession.AddAuthorizedKey(Ossuary.Pipelines.OssuaryPublicKey)",
                Assert.ThrowsAny<ArgumentException>(() => session.AddAuthorizedKey(null!)));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
