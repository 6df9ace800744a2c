using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>Issue 14, item 1: the client connects by host name, address or Unix socket, within a timeout.</summary>
public class HostNameConnectTests
{
    [Fact]
    public async Task ConnectsByHostNameToAnIPv4LoopbackServer()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, Secure(serverKey, clientKey)));

        await using OssuaryClientConnection connection = await Echo.ConnectAndEchoAsync(
            new DnsEndPoint("localhost", host.Port()), Echo.ClientOptions(clientKey, serverKey.PublicKey));

        Assert.Equal(IPAddress.Loopback, Assert.IsType<IPEndPoint>(connection.RemoteEndPoint).Address);
    }

    [Fact]
    public async Task ConnectsThroughADnsEndPointToAnIPv6LoopbackServer()
    {
        // This machine's resolver maps no name to ::1 (localhost is 127.0.0.1 only), so the name is
        // the literal, which still takes the DnsEndPoint path; the test below covers names with both families.
        Assert.True(Socket.OSSupportsIPv6, "this machine has ::1 on its loopback; IPv6 must work");
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.IPv6Loopback, 0, Secure(serverKey, clientKey)));

        await using OssuaryClientConnection connection = await Echo.ConnectAndEchoAsync(
            new DnsEndPoint("::1", host.Port()), Echo.ClientOptions(clientKey, serverKey.PublicKey));

        Assert.Equal(IPAddress.IPv6Loopback, Assert.IsType<IPEndPoint>(connection.RemoteEndPoint).Address);
    }

    [Theory]
    [InlineData(AddressFamily.InterNetworkV6)]
    [InlineData(AddressFamily.InterNetwork)]
    public async Task EveryResolvedAddressIsTriedInOrderUntilOneAccepts(AddressFamily listening)
    {
        // The name resolves to ::1 then 127.0.0.1 (the order getaddrinfo gives for a dual-stack
        // localhost); the server listens on only one of them, so the other is refused first or never tried.
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        IPAddress address = listening == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback;
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(address, 0, Secure(serverKey, clientKey)));
        var asked = new List<string>();

        using Socket socket = await SocketConnector.ConnectAsync(
            new DnsEndPoint("dual.example", host.Port()), TimeSpan.FromSeconds(30),
            (name, _, _) =>
            {
                asked.Add(name);
                return Task.FromResult(new[] { IPAddress.IPv6Loopback, IPAddress.Loopback });
            },
            CancellationToken.None).Within();

        Assert.Equal(["dual.example"], asked);
        Assert.Equal(address, ((IPEndPoint)socket.RemoteEndPoint!).Address);
    }

    /// <summary>
    /// A name whose first address never answers (a black-holed IPv6 route: its SYNs vanish) and whose
    /// second accepts. The first took the whole ConnectTimeout and the connect failed with TimedOut,
    /// the second never tried, where the docs promise every address is tried until one accepts; now an
    /// address that is not the last gets its share of what is left (at least 2 s) and the next is tried.
    /// </summary>
    [Fact]
    public async Task AnAddressThatNeverAnswersLeavesTimeForTheNext()
    {
        // ::1 never answers: a listener with a backlog of 0, filled by one connection it never accepts,
        // has the kernel drop further SYNs. 127.0.0.1 on the same port accepts.
        using UnansweringListener unanswering = await UnansweringListener.StartAsync();
        int port = unanswering.Port;
        using var accepting = new TcpListener(IPAddress.Loopback, port);
        accepting.Start();

        using Socket socket = await SocketConnector.ConnectAsync(
            new DnsEndPoint("dual.example", port), TimeSpan.FromSeconds(6),
            (_, _, _) => Task.FromResult(new[] { IPAddress.IPv6Loopback, IPAddress.Loopback }),
            CancellationToken.None).Within();

        Assert.Equal(IPAddress.Loopback, ((IPEndPoint)socket.RemoteEndPoint!).Address);
    }

    [Fact]
    public async Task ConnectSocketAsyncOpensTheSameConnectionWithoutAHandshakeForCallersWithTheirOwnStream()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, Secure(serverKey, clientKey)));

        using Socket socket = await OssuaryClient.ConnectSocketAsync(new DnsEndPoint("localhost", host.Port()), TimeSpan.FromSeconds(30)).Within();
        await using var stream = new OssuaryStream(new NetworkStream(socket, ownsSocket: false));
        await stream.AuthenticateAsClientAsync(Echo.ClientOptions(clientKey, serverKey.PublicKey)).Within();
        await stream.WriteAsync("own stream"u8.ToArray()).AsTask().Within();
        byte[] echoed = new byte[10];
        await stream.ReadExactlyAsync(echoed).AsTask().Within();

        Assert.Equal("own stream"u8.ToArray(), echoed);
        Assert.True(socket.NoDelay);
    }

    /// <summary>
    /// A name whose first address refuses and whose last never answers: the ConnectTimeout runs out on the
    /// last, and its TimedOut said only that the host did not answer in time, so an operator could not tell
    /// that the first address refused (a server down on one of its addresses). The message now names each
    /// address tried and how it failed.
    /// </summary>
    [Fact]
    public async Task ATimeoutSaysHowTheAddressesTriedBeforeItFailed()
    {
        // ::1 never answers (a backlog of 0, filled); nothing listens on 127.0.0.1 at that port, which refuses
        // at once (3 s: on a loaded machine the refusal still comes well within the first address's 2 s share).
        using UnansweringListener unanswering = await UnansweringListener.StartAsync();
        int port = unanswering.Port;

        SocketException timedOut = await Assert.ThrowsAsync<SocketException>(() => SocketConnector.ConnectAsync(
            new DnsEndPoint("half.example", port), TimeSpan.FromSeconds(3),
            (_, _, _) => Task.FromResult(new[] { IPAddress.Loopback, IPAddress.IPv6Loopback }),
            CancellationToken.None).Within());

        Assert.Equal(SocketError.TimedOut, timedOut.SocketErrorCode);
        Assert.Contains($"127.0.0.1:{port}", timedOut.Message, StringComparison.Ordinal);
        Assert.Contains("refused", timedOut.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("had not resolved", timedOut.Message, StringComparison.Ordinal); // it had: the addresses used up the time

        // The host as the caller named it, not DnsEndPoint's "Unspecified/half.example:port", which reads as a mangled name.
        Assert.StartsWith($"Connecting to half.example:{port} did not complete", timedOut.Message, StringComparison.Ordinal);
    }

    /// <summary>Where no address accepts, each one's failure is named, not only the last's.</summary>
    [Fact]
    public async Task AHostWhereNoAddressAcceptsNamesEachAddresssFailure()
    {
        using var closed = new ClosedPort(bothFamilies: true);

        SocketException failed = await Assert.ThrowsAsync<SocketException>(() => SocketConnector.ConnectAsync(
            new DnsEndPoint("nobody.example", closed.Port), TimeSpan.FromSeconds(30),
            (_, _, _) => Task.FromResult(new[] { IPAddress.IPv6Loopback, IPAddress.Loopback }),
            CancellationToken.None).Within());

        Assert.Contains($"[::1]:{closed.Port}", failed.Message, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{closed.Port}", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AHostWhereNoAddressAcceptsFailsWithTheLastSocketError()
    {
        using var closed = new ClosedPort(bothFamilies: true);

        SocketException failed = await Assert.ThrowsAsync<SocketException>(() => SocketConnector.ConnectAsync(
            new DnsEndPoint("nobody.example", closed.Port), TimeSpan.FromSeconds(30),
            (_, _, _) => Task.FromResult(new[] { IPAddress.IPv6Loopback, IPAddress.Loopback }),
            CancellationToken.None).Within());

        Assert.Equal(SocketError.ConnectionRefused, failed.SocketErrorCode);
    }

    /// <summary>
    /// A factory shared by a host connects to many servers, and its failures end up in one log: the
    /// system's message alone ("Name or service not known", "Connection refused") did not say which
    /// name failed to resolve or which endpoint refused.
    /// </summary>
    [Fact]
    public async Task AFailedConnectNamesTheHostOrEndPointAndKeepsTheSocketError()
    {
        using var factory = new OssuaryConnectionFactory(new OssuaryClientOptions { ConnectTimeout = TimeSpan.FromSeconds(10), TrustedServerKeys = { StrangerKey.Value } });
        using var closed = new ClosedPort();

        // The reserved .invalid domain resolves nowhere; a resolver that cannot answer at all times out, which names it too.
        SocketException unresolved = await Assert.ThrowsAsync<SocketException>(() => factory.ConnectAsync(new DnsEndPoint("no-such-host.invalid", 7400)).AsTask().Within());
        SocketException refused = await Assert.ThrowsAsync<SocketException>(() => factory.ConnectAsync(new IPEndPoint(IPAddress.Loopback, closed.Port)).AsTask().Within());
        SocketException refusedByName = await Assert.ThrowsAsync<SocketException>(() => SocketConnector.ConnectAsync(
            new DnsEndPoint("device-7.example", closed.Port), TimeSpan.FromSeconds(30),
            (_, _, _) => Task.FromResult(new[] { IPAddress.Loopback }),
            CancellationToken.None).Within());

        Assert.Contains("no-such-host.invalid", unresolved.Message, StringComparison.Ordinal);
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.Contains($"127.0.0.1:{closed.Port}", refused.Message, StringComparison.Ordinal);
        Assert.Equal(SocketError.ConnectionRefused, refusedByName.SocketErrorCode);
        Assert.Contains("device-7.example", refusedByName.Message, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{closed.Port}", refusedByName.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// The named failure keeps what the system said: the raw OS error (what NativeErrorCode gives a plain
    /// socket's failure) and the stack of the connect that failed. Rebuilt to put the endpoint in its
    /// message, it was thrown from our own frames alone, with nothing of the socket call under them.
    /// </summary>
    [Fact]
    public async Task AFailedConnectKeepsTheSystemsErrorAndStack()
    {
        using var closed = new ClosedPort();
        int systemsError;
        using (var plain = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            systemsError = (await Assert.ThrowsAsync<SocketException>(() => plain.ConnectAsync(new IPEndPoint(IPAddress.Loopback, closed.Port)).Within())).NativeErrorCode;
        }

        SocketException byAddress = await Assert.ThrowsAsync<SocketException>(() => OssuaryClient.ConnectSocketAsync(
            new IPEndPoint(IPAddress.Loopback, closed.Port), TimeSpan.FromSeconds(30)).Within());
        SocketException byName = await Assert.ThrowsAsync<SocketException>(() => SocketConnector.ConnectAsync(
            new DnsEndPoint("device-7.example", closed.Port), TimeSpan.FromSeconds(30),
            (_, _, _) => Task.FromResult(new[] { IPAddress.Loopback }),
            CancellationToken.None).Within());

        foreach (SocketException failed in new[] { byAddress, byName })
        {
            Assert.Equal((SocketError.ConnectionRefused, systemsError), (failed.SocketErrorCode, failed.NativeErrorCode));
            Assert.Contains("System.Net.Sockets.Socket", failed.StackTrace, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// A name the system's resolver rejects outright (longer than DNS allows) fails as a name that did
    /// not resolve, naming it: the resolver's ArgumentOutOfRangeException ("hostName") went out as it was,
    /// an exception ConnectAsync does not document, whose message named no host.
    /// </summary>
    [Fact]
    public async Task ANameTheResolverRejectsFailsAsUnresolvedAndNamesIt()
    {
        string name = new string('a', 300) + ".example";

        SocketException failed = await Assert.ThrowsAsync<SocketException>(() => OssuaryClient.ConnectSocketAsync(
            new DnsEndPoint(name, 7400), TimeSpan.FromSeconds(30)).Within());

        Assert.Equal(SocketError.HostNotFound, failed.SocketErrorCode);
        Assert.Contains(name, failed.Message, StringComparison.Ordinal);
        Assert.Contains("System.Net.Dns", failed.StackTrace, StringComparison.Ordinal); // the resolver's refusal, where it was made
    }

    /// <summary>
    /// Kestrel's other endpoints (a URI, a named pipe) are no socket this client can open: the
    /// connect threw NotImplementedException from EndPoint.AddressFamily, which says nothing of why;
    /// it is refused as Kestrel's own SocketConnectionFactory refuses what it cannot connect to.
    /// </summary>
    [Fact]
    public async Task AnEndPointNoSocketCanReachIsRefusedAsNotSupportedByName()
    {
        using var factory = new OssuaryConnectionFactory(new OssuaryClientOptions { TrustedServerKeys = { StrangerKey.Value } });
        var uri = new UriEndPoint(new Uri("http://device-7.example:7400/"));
        var pipe = new NamedPipeEndPoint("ossuary-devices");

        NotSupportedException byUri = await Assert.ThrowsAsync<NotSupportedException>(() => factory.ConnectAsync(uri).AsTask().Within());
        NotSupportedException byPipe = await Assert.ThrowsAsync<NotSupportedException>(() => OssuaryClient.ConnectAsync(pipe, new OssuaryClientOptions { TrustedServerKeys = { StrangerKey.Value } }).Within());
        NotSupportedException socketByUri = await Assert.ThrowsAsync<NotSupportedException>(() => OssuaryClient.ConnectSocketAsync(uri, TimeSpan.FromSeconds(10)).Within());

        Assert.Contains(nameof(UriEndPoint), byUri.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(NamedPipeEndPoint), byPipe.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(DnsEndPoint), socketByUri.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectTimeoutBoundsNameResolutionAndConnectingAndSaysSo()
    {
        var options = new OssuaryClientOptions { ConnectTimeout = TimeSpan.FromMilliseconds(200), TrustedServerKeys = { StrangerKey.Value } };

        SocketException timedOut = await Assert.ThrowsAsync<SocketException>(() => SocketConnector.ConnectAsync(
            new DnsEndPoint("slow.example", 7400), options.ConnectTimeout,
            async (_, _, cancellationToken) =>
            {
                await Task.Delay(Timeout.Infinite, cancellationToken); // a resolver that never answers
                return [];
            },
            CancellationToken.None).Within());

        Assert.Equal(SocketError.TimedOut, timedOut.SocketErrorCode);
        Assert.Contains("slow.example", timedOut.Message);
    }

    [Fact]
    public async Task CancellingTheCallerStillThrowsOperationCanceled()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        using var closed = new ClosedPort();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => OssuaryClient.ConnectAsync(
            new DnsEndPoint("localhost", closed.Port), new OssuaryClientOptions { TrustedServerKeys = { StrangerKey.Value } }, cancelled.Token).Within());
    }

    [Fact]
    public async Task ConnectsOverAUnixDomainSocket()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        string path = Path.Combine(Path.GetTempPath(), $"ossuary-{Guid.NewGuid():N}.sock");
        try
        {
            await using KestrelHost host = await KestrelHost.StartAsync(k => k.ListenUnixSocket(path, Secure(serverKey, clientKey)));

            await using OssuaryClientConnection connection = await Echo.ConnectAndEchoAsync(
                new UnixDomainSocketEndPoint(path), Echo.ClientOptions(clientKey, serverKey.PublicKey));

            Assert.Equal(clientKey.PublicKey, Assert.Single(host.Log.Features)!.RemotePublicKey);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ConnectTimeoutMustBePositiveOrInfinite()
    {
        var options = new OssuaryClientOptions { ConnectTimeout = TimeSpan.Zero };

        InvalidOperationException invalid = Assert.Throws<InvalidOperationException>(() => options.Validate());

        Assert.Contains("ConnectTimeout", invalid.Message);
    }

    /// <summary>
    /// A port on ::1 that never answers: a listener with a backlog of 0, filled by one connection it never
    /// accepts, has the kernel drop further SYNs (a black-holed route, as a connect sees it).
    /// </summary>
    private sealed class UnansweringListener : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
        private readonly Socket _filling = new(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);

        public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

        public static async Task<UnansweringListener> StartAsync()
        {
            var unanswering = new UnansweringListener();
            unanswering._listener.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
            unanswering._listener.Listen(0);
            await unanswering._filling.ConnectAsync(unanswering._listener.LocalEndPoint!).Within();
            return unanswering;
        }

        public void Dispose()
        {
            _filling.Dispose();
            _listener.Dispose();
        }
    }

    internal static Action<Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions> Secure(OssuaryIdentity serverKey, OssuaryIdentity clientKey) => listen =>
    {
        listen.UseOssuary(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(clientKey.PublicKey);
        });
        listen.UseConnectionHandler<EchoConnectionHandler>();
    };
}
