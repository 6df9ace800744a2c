using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A connect whose socket the system will not make (socket(2) fails: an address family the host does not
/// support, as an IPv6 address on a host with IPv6 turned off) is a failed connect like any other, and
/// names the endpoint: the socket was made outside the code that names it, so the system's bare
/// "Address family not supported" went out, and a host connecting to many servers could not tell which.
/// </summary>
public class UnmakeableSocketTests
{
    [Fact]
    public async Task ASocketTheSystemWillNotMakeFailsTheConnectNamingTheEndPoint()
    {
        var endpoint = new UnsupportedFamilyEndPoint(IPAddress.Loopback, 7400);

        SocketException failed = await Assert.ThrowsAsync<SocketException>(() => OssuaryClient.ConnectSocketAsync(endpoint, TimeSpan.FromSeconds(30)).Within());

        Assert.Contains("127.0.0.1:7400", failed.Message, StringComparison.Ordinal);
        // The system's own refusal is kept (its frames are not: once the runtime has inlined the Socket constructor, a
        // stack trace no longer shows it, as in a whole-suite run).
        Assert.Equal(SocketError.AddressFamilyNotSupported, failed.SocketErrorCode);
    }

    /// <summary>An address whose family no socket on this host can be made for: socket(2) fails with EAFNOSUPPORT.</summary>
    private sealed class UnsupportedFamilyEndPoint(IPAddress address, int port) : IPEndPoint(address, port)
    {
        public override AddressFamily AddressFamily => AddressFamily.AppleTalk;
    }
}
