using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;
using static Ossuary.Pipelines.Tests.Interop.Original.OriginalKeys;

namespace Ossuary.Pipelines.Tests.Interop.Original;

/// <summary>
/// The original libossuary 0.5.2 as a client (ref-peer) against our Kestrel server with
/// UseOssuary, over TCP on 127.0.0.1. Each test checks the bytes on both sides (SHA-256 of what
/// our handler received against ref-peer's reproducible payload; ref-peer compares the echo
/// itself) and both outcomes (ref-peer's RESULT line and exit code, our handler's end).
/// </summary>
[Collection(OriginalPeerCollection.Name)]
public sealed class OriginalClientToKestrelTests
{
    private const string Greeting = "hello from the original";

    [Fact]
    public async Task AnonymousOriginalClientTalksToOurUnauthenticatedServer()
    {
        using var serverKey = OssuaryIdentity.Generate();
        await using var server = await StartAsync(o =>
        {
            o.Mode = OssuaryServerMode.Unauthenticated;
            o.Identity = serverKey;
        });

        (OriginalOutcome client, _) = await EchoAsync(server, 100_000, "--authorized", serverKey.PublicKey.ToString());

        IOssuaryConnectionFeature? seen = Assert.Single(server.Log.Features);
        Assert.Null(seen!.RemotePublicKey);
        Assert.Equal(serverKey.PublicKey, seen.LocalPublicKey);
        Assert.Contains("established; remote key " + serverKey.PublicKey, client.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OriginalClientWithAKeyIsAdmittedByOurAuthenticatedServer()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using var server = await StartAsync(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(clientKey.PublicKey);
        });

        await EchoAsync(server, 100_000, "--secret", SeedHex(clientKey), "--authorized", serverKey.PublicKey.ToString());

        IOssuaryConnectionFeature? seen = Assert.Single(server.Log.Features);
        Assert.Equal(clientKey.PublicKey, seen!.RemotePublicKey);
    }

    [Fact]
    public async Task OriginalClientTrustsOurServerOnFirstUse()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using var server = await StartAsync(o =>
        {
            o.Mode = OssuaryServerMode.Unauthenticated;
            o.Identity = serverKey;
        });

        (OriginalOutcome client, _) = await EchoAsync(server, 20_000, "--secret", SeedHex(clientKey), "--tofu");

        // The original's TOFU flow: handshake_done() stops on the unknown key, remote_public_key() is ours.
        Assert.Contains($"untrusted server key {serverKey.PublicKey}: trusting it (TOFU)", client.Stderr, StringComparison.Ordinal);
        Assert.Equal(clientKey.PublicKey, Assert.Single(server.Log.Features)!.RemotePublicKey);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task OurAuthenticatedServerRefusesAnOriginalClientItDoesNotKnow(bool anonymous)
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var allowedKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        await using var server = await StartAsync(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(allowedKey.PublicKey);
        });
        List<string> args = ["--authorized", serverKey.PublicKey.ToString(), "--send", Greeting, "--expect-echo"];
        if (!anonymous)
        {
            args.AddRange(["--secret", SeedHex(strangerKey)]);
        }

        await using OriginalPeer peer = OriginalPeer.StartClient(server.EndPoint.Port, null, [.. args]);
        OriginalOutcome client = await peer.WaitForExitAsync();

        // The handshake is 1.5 round trips: the original client counts itself established once it
        // has sent its authentication and sends its message at once. We refuse it after the
        // handshake with Disconnect (error) (README "Decisions"), so the echo it waits for never
        // comes: it reports the closed connection. Our handler never ran, nothing was delivered.
        client.AssertError("received=0");
        Assert.Empty(server.Log.Features);
        Assert.Empty(server.Services.GetRequiredService<ReceivedLog>().Entries);
    }

    [Fact]
    public async Task SixtyFourMebibytesEachWayBetweenTheOriginalClientAndOurServer()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using var server = await StartAsync(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(clientKey.PublicKey);
        });

        (OriginalOutcome client, _) = await EchoAsync(
            server, 64 << 20, "--secret", SeedHex(clientKey), "--authorized", serverKey.PublicKey.ToString(), "--timeout", "110");

        Assert.True(client.Packets.Sent > (64 << 20) / 16384, client.ToString());
    }

    [Fact]
    public async Task MoreThan65536MessagesFromTheOriginalClientWrapItsMessageIds()
    {
        using var serverKey = OssuaryIdentity.Generate();
        await using var server = await StartAsync(o =>
        {
            o.Mode = OssuaryServerMode.Unauthenticated;
            o.Identity = serverKey;
        });

        // 70,000 messages of 8 bytes: msg_id passes 65535 and wraps to 0 on the original's side,
        // and our server must accept every one of them.
        (OriginalOutcome client, _) = await EchoAsync(
            server, 70_000 * 8, "--authorized", serverKey.PublicKey.ToString(), "--chunk", "8", "--timeout", "110");

        (long sent, int sentWraps, _, _) = client.Packets;
        Assert.True(sent > 70_000 && sentWraps == 1, client.ToString());
        Assert.Contains("data messages sent: 70001,", client.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EmptyAndFullSizeMessagesFromTheOriginalClient()
    {
        using var serverKey = OssuaryIdentity.Generate();
        await using var server = await StartAsync(o =>
        {
            o.Mode = OssuaryServerMode.Unauthenticated;
            o.Identity = serverKey;
        });
        ulong seed = NewSeed();

        // An empty message first (a 28-byte packet), then three of 16,384 bytes, the largest.
        await using OriginalPeer peer = OriginalPeer.StartClient(
            server.EndPoint.Port, seed, "--authorized", serverKey.PublicKey.ToString(), "--send", "", "--send-bytes", "49152", "--chunk", "16384", "--expect-echo");
        OriginalOutcome client = await peer.WaitForExitAsync();

        client.AssertOk("sent=49152 received=49152");
        Assert.Contains("data messages sent: 4,", client.Stderr, StringComparison.Ordinal);
        Assert.Null(await server.Log.NextOutcomeAsync());
        (long count, string sha) = Assert.Single(server.Services.GetRequiredService<ReceivedLog>().Entries);
        Assert.Equal(49152, count);
        Assert.Equal(Sha256(OriginalPeer.Payload(seed, 49152)), sha);
    }

    [Fact]
    public async Task TheOriginalClientsCleanDisconnectEndsOurConnectionNormally()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using var server = await StartAsync(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(clientKey.PublicKey);
        });
        ulong seed = NewSeed();

        // No --expect-echo: the client sends and disconnects at once, with our echo still coming.
        await using OriginalPeer peer = OriginalPeer.StartClient(
            server.EndPoint.Port, seed, "--secret", SeedHex(clientKey), "--authorized", serverKey.PublicKey.ToString(), "--send-bytes", "5000");
        OriginalOutcome client = await peer.WaitForExitAsync();

        client.AssertOk("sent=5000");
        Assert.Null(await server.Log.NextOutcomeAsync()); // our input completed: a clean end, not Truncated
        (long count, string sha) = Assert.Single(server.Services.GetRequiredService<ReceivedLog>().Entries);
        Assert.Equal(5000, count);
        Assert.Equal(Sha256(OriginalPeer.Payload(seed, 5000)), sha);
    }

    private static Task<OssuaryTestServer> StartAsync(Action<OssuaryServerOptions> configure) =>
        OssuaryTestServer.StartAsync<EchoConnectionHandler>(configure, services => services.AddSingleton<ReceivedLog>());

    /// <summary>
    /// ref-peer sends <see cref="Greeting"/> and <paramref name="bytes"/> bytes of its payload and
    /// waits for the echo; checks its RESULT, our handler's clean end and the SHA-256 of what it received.
    /// </summary>
    private static async Task<(OriginalOutcome Client, ulong Seed)> EchoAsync(OssuaryTestServer server, int bytes, params string[] args)
    {
        ulong seed = NewSeed();
        await using OriginalPeer peer = OriginalPeer.StartClient(
            server.EndPoint.Port, seed, [.. args, "--send", Greeting, "--send-bytes", bytes.ToString(System.Globalization.CultureInfo.InvariantCulture), "--expect-echo"]);
        OriginalOutcome client = await peer.WaitForExitAsync();

        int total = Greeting.Length + bytes;
        client.AssertOk($"sent={total} received={total}");
        Assert.Null(await server.Log.NextOutcomeAsync().Within(TimeSpan.FromSeconds(60)));
        (long count, string sha) = Assert.Single(server.Services.GetRequiredService<ReceivedLog>().Entries);
        Assert.Equal(total, count);
        Assert.Equal(Sha256([.. Encoding.ASCII.GetBytes(Greeting), .. OriginalPeer.Payload(seed, bytes)]), sha);
        return (client, seed);
    }
}

/// <summary>The live tests against the original run one at a time: each moves megabytes through two processes.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class OriginalPeerCollection
{
    public const string Name = "the original libossuary as a live peer";
}
