using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// C processes on libossuary.so against the .NET adapter over loopback TCP: a C client against
/// Kestrel with UseOssuary, and OssuaryClient.ConnectAsync against a C server.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class NativeTcpTests(NativeLibraryFixture native)
{
    /// <summary>What tcp_client.c sends: "hello from C", 16384 bytes, then 3000 bytes.</summary>
    private const int ClientPayload = 12 + 16384 + 3000;

    [Fact]
    public async Task CClientWithAKeyTalksToTheDotNetAuthenticatedServerAndClosesCleanly()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(serverKey, clientKey);

        ProcessResult result = await native.RunAsync(
            "tcp_client", NativeLink.Shared, Port(server.EndPoint), SeedHex(clientKey), serverKey.PublicKey.ToString());

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"echoed {ClientPayload} bytes\n", result.Output, StringComparison.Ordinal);
        Assert.Contains("closed eof\n", result.Output, StringComparison.Ordinal);
        IOssuaryConnectionFeature? seen = Assert.Single(server.Log.Features);
        Assert.Equal(clientKey.PublicKey, seen!.RemotePublicKey);
        Assert.Null(await server.Log.NextOutcomeAsync()); // the C client's Disconnect ended the stream normally
    }

    [Fact]
    public async Task AnonymousCClientTrustsTheDotNetUnauthenticatedServerOnFirstUse()
    {
        using var serverKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(o =>
        {
            o.Mode = OssuaryServerMode.Unauthenticated;
            o.Identity = serverKey;
        });

        ProcessResult result = await native.RunAsync("tcp_client", NativeLink.Shared, Port(server.EndPoint), "-", "tofu");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"trusting server_key {serverKey.PublicKey}\n", result.Output, StringComparison.Ordinal);
        Assert.Contains($"echoed {ClientPayload} bytes\n", result.Output, StringComparison.Ordinal);
        IOssuaryConnectionFeature? seen = Assert.Single(server.Log.Features);
        Assert.Null(seen!.RemotePublicKey);
        Assert.Null(await server.Log.NextOutcomeAsync());
    }

    [Fact]
    public async Task CClientWithAnUnknownKeyIsRefusedByTheDotNetServer()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var allowedKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartEchoAsync(serverKey, allowedKey);

        ProcessResult result = await native.RunAsync(
            "tcp_client", NativeLink.Shared, Port(server.EndPoint), SeedHex(strangerKey), serverKey.PublicKey.ToString());

        Assert.NotEqual(0, result.ExitCode);
        Assert.DoesNotContain("echoed", result.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task DotNetClientTalksToACServer(bool authenticated)
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        List<string> arguments = [SeedHex(serverKey), authenticated ? "1" : "2"];
        if (authenticated)
        {
            arguments.Add(clientKey.PublicKey.ToString());
        }

        string program = await native.ProgramAsync("tcp_server", NativeLink.Shared);
        await using NativeProcess server = NativeProcess.Start(program, arguments, native.NeutralDirectory);
        int port = int.Parse((await server.WaitForLineAsync("port "))["port ".Length..], System.Globalization.CultureInfo.InvariantCulture);

        var options = new OssuaryClientOptions { Identity = authenticated ? clientKey : null };
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        byte[] bulk = RandomNumberGenerator.GetBytes(50_000);
        await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), options).Within())
        {
            Assert.Equal(serverKey.PublicKey, connection.Ossuary.RemotePublicKey);
            await connection.Transport.Output.WriteAsync("hello C server"u8.ToArray());
            Assert.Equal("hello C server"u8.ToArray(), await PipeReads.ReadExactlyAsync(connection.Transport.Input, 14).Within());
            await connection.Transport.Output.WriteAsync(bulk);
            Assert.Equal(bulk, await PipeReads.ReadExactlyAsync(connection.Transport.Input, bulk.Length).Within());
        }

        ProcessResult result = await server.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 0, result.ToString());
        string expectedKey = authenticated ? clientKey.PublicKey.ToString() : OssuaryPublicKey.Anonymous.ToString();
        Assert.Contains($"client_key {expectedKey}\n", result.Output, StringComparison.Ordinal);
        Assert.Contains($"{14 + bulk.Length} bytes", result.Output, StringComparison.Ordinal);
    }

    /// <summary>
    /// The README's loop (socket_loop.h), established, under a header announcing 65535 body
    /// bytes: more than a packet may hold, and more than its 64 KiB input buffer could ever
    /// gather. Both libraries refuse such a header from the header alone, so the loop must hand
    /// it over rather than wait for a body; the server then answers (a Reset, or the original's
    /// Disconnect) instead of waiting forever.
    /// </summary>
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Original)]
    public async Task CServerLoopHandsAnOversizedHeaderToTheLibraryAtOnce(NativeLink link)
    {
        using var serverKey = OssuaryIdentity.Generate();
        await using NativeProcess server = await StartServerAsync(link, serverKey);
        using Socket peer = await RawPeer.ConnectAsync(await EndPointAsync(server));
        await using var stream = new NetworkStream(peer, ownsSocket: false);
        await HandshakeAnonymouslyAsync(server, stream);

        await stream.WriteAsync(Wire.Header(0xFFFF, 2, Wire.EncryptedData));

        byte[] answer = await ReadPacketAsync(stream);
        Assert.Contains(Wire.Type(answer), new[] { Wire.Reset, Wire.Disconnect });
    }

    /// <summary>
    /// The README's loop, established, when the peer closes in the middle of a packet: the bytes
    /// it holds can never become a packet, so the loop must end and say that they were lost,
    /// not go round without ever waiting again.
    /// </summary>
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Original)]
    public async Task CServerLoopEndsWhenThePeerClosesInsideAPacket(NativeLink link)
    {
        using var serverKey = OssuaryIdentity.Generate();
        await using NativeProcess server = await StartServerAsync(link, serverKey);
        using (Socket peer = await RawPeer.ConnectAsync(await EndPointAsync(server)))
        {
            await using var stream = new NetworkStream(peer, ownsSocket: false);
            await HandshakeAnonymouslyAsync(server, stream);

            // A record's header announcing 100 body bytes, then 10 of them, then the end of the stream.
            byte[] unfinished = [.. Wire.Header(100, 2, Wire.EncryptedData), .. new byte[10]];
            await stream.WriteAsync(unfinished);
            peer.Shutdown(SocketShutdown.Send);
        }

        ProcessResult result = await server.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 7, result.ToString());
        Assert.Contains("the peer closed inside a packet: 18 bytes lost", result.Output, StringComparison.Ordinal);
    }

    /// <summary>Starts tcp_server on <paramref name="link"/> as an unauthenticated server.</summary>
    private async Task<NativeProcess> StartServerAsync(NativeLink link, OssuaryIdentity serverKey) =>
        NativeProcess.Start(await native.ProgramAsync("tcp_server", link), [SeedHex(serverKey), "2"], native.NeutralDirectory);

    /// <summary>Where tcp_server listens, from the "port N" line it prints.</summary>
    private static async Task<IPEndPoint> EndPointAsync(NativeProcess server) =>
        new(IPAddress.Loopback, int.Parse((await server.WaitForLineAsync("port "))["port ".Length..], System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Runs a handshake by hand as an anonymous client, until tcp_server says it is established.</summary>
    private static async Task HandshakeAnonymouslyAsync(NativeProcess server, NetworkStream stream)
    {
        var client = new ForgedPeer();
        await stream.WriteAsync(client.ClientHandshake());
        byte[] serverHandshake = await ReadPacketAsync(stream);
        Assert.Equal(Wire.ServerHandshake, Wire.Type(serverHandshake));
        await stream.WriteAsync(client.ClientAuthentication(serverHandshake, identity: null));
        await server.WaitForLineAsync("client_key ");
    }

    /// <summary>One whole packet, header included.</summary>
    private static async Task<byte[]> ReadPacketAsync(NetworkStream stream)
    {
        byte[] header = new byte[Wire.HeaderSize];
        await stream.ReadExactlyAsync(header).Within();
        byte[] packet = new byte[Wire.HeaderSize + Wire.Length(header)];
        header.CopyTo(packet, 0);
        await stream.ReadExactlyAsync(packet.AsMemory(Wire.HeaderSize)).Within();
        return packet;
    }

    private static string Port(IPEndPoint endpoint) => endpoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string SeedHex(OssuaryIdentity identity)
    {
        Span<char> hex = stackalloc char[64];
        Assert.True(identity.TryFormatSeedHex(hex, out _));
        return new string(hex);
    }
}
