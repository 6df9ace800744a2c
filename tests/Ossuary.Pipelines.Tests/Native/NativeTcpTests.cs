using System.Net;
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

    private static string Port(IPEndPoint endpoint) => endpoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string SeedHex(OssuaryIdentity identity)
    {
        Span<char> hex = stackalloc char[64];
        Assert.True(identity.TryFormatSeedHex(hex, out _));
        return new string(hex);
    }
}
