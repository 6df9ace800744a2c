using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Tests.Support;
using static Ossuary.Pipelines.Tests.Interop.Original.OriginalKeys;

namespace Ossuary.Pipelines.Tests.Interop.Original;

/// <summary>
/// Our OssuaryClient and OssuaryStream against the original libossuary 0.5.2 as a server
/// (ref-peer), over TCP on 127.0.0.1. Each test checks the bytes on both sides (SHA-256 of what
/// we sent against what ref-peer printed or echoed back) and both outcomes (ours, and ref-peer's
/// RESULT line and exit code).
/// </summary>
[Collection(OriginalPeerCollection.Name)]
public sealed class OurClientToOriginalServerTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(110);

    [Fact]
    public async Task OurClientWithAKeyTalksToTheOriginalAuthenticatedServer()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using OriginalPeer peer = await OriginalPeer.StartServerAsync(
            "--type", "auth", "--secret", SeedHex(serverKey), "--authorized", clientKey.PublicKey.ToString(), "--echo");
        Assert.Equal(serverKey.PublicKey, peer.ServerKey);
        byte[] data = RandomNumberGenerator.GetBytes(200_000);

        var options = new OssuaryClientOptions { Identity = clientKey };
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        await using (OssuaryClientConnection connection = await ConnectAsync(peer, options))
        {
            Assert.Equal(serverKey.PublicKey, connection.Ossuary.RemotePublicKey);
            Task<byte[]> echo = PipeReads.ReadExactlyAsync(connection.Transport.Input, data.Length);
            await connection.Transport.Output.WriteAsync(data);
            Assert.Equal(Sha256(data), Sha256(await echo.Within()));
        }

        OriginalOutcome server = await peer.WaitForExitAsync();
        server.AssertOk($"bytes={data.Length}");
        Assert.Contains($"established; remote key {clientKey.PublicKey}", server.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OurAnonymousClientSendsToTheOriginalUnauthenticatedServerAndClosesCleanly()
    {
        using var serverKey = OssuaryIdentity.Generate();
        await using OriginalPeer peer = await OriginalPeer.StartServerAsync("--secret", SeedHex(serverKey));
        byte[] data = RandomNumberGenerator.GetBytes(300_000);

        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        await using (OssuaryClientConnection connection = await ConnectAsync(peer, options))
        {
            await connection.Transport.Output.WriteAsync(data);

            // Completing our output sends Disconnect after the data; the original answers it
            // with a Reset (see PROTOCOL.md), which must end our input without an error.
            await connection.Transport.Output.CompleteAsync();
            Assert.Empty(await PipeReads.ReadToEndAsync(connection.Transport.Input));
        }

        // "RESULT ok" only after the peer's clean Disconnect, and every byte printed in order.
        OriginalOutcome server = await peer.WaitForExitAsync();
        server.AssertOk($"bytes={data.Length}");
        server.AssertPrinted(data);
        Assert.Contains("established; remote key " + OssuaryPublicKey.Anonymous, server.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OurClientTrustsTheOriginalServerOnFirstUse()
    {
        // Without --secret the original server draws a new key for the connection: nobody can know it in advance.
        await using OriginalPeer peer = await OriginalPeer.StartServerAsync("--echo");
        Assert.Null(peer.ServerKey);
        OssuaryPublicKey? offered = null;
        var options = new OssuaryClientOptions
        {
            TrustServer = (key, _) =>
            {
                offered = key;
                return ValueTask.FromResult(true);
            },
        };

        await using (OssuaryClientConnection connection = await ConnectAsync(peer, options))
        {
            Assert.Equal(offered, connection.Ossuary.RemotePublicKey);
            await connection.Transport.Output.WriteAsync("trust on first use"u8.ToArray());
            Assert.Equal("trust on first use"u8.ToArray(), await PipeReads.ReadExactlyAsync(connection.Transport.Input, 18).Within());
        }

        OriginalOutcome server = await peer.WaitForExitAsync();
        server.AssertOk("bytes=18");
        Assert.Contains($"the library drew key {offered} for this connection", server.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OurClientRefusesAnOriginalServerItDoesNotTrust()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var otherKey = OssuaryIdentity.Generate();
        await using OriginalPeer peer = await OriginalPeer.StartServerAsync("--secret", SeedHex(serverKey), "--echo");
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(otherKey.PublicKey);

        var refused = await Assert.ThrowsAsync<OssuaryException>(() => ConnectAsync(peer, options));

        Assert.Equal(OssuaryErrorReason.UntrustedServer, refused.Reason);
        OriginalOutcome server = await peer.WaitForExitAsync();
        server.AssertError("bytes=0");
    }

    [Fact]
    public async Task TheOriginalServersFiveResetRefusalSeenFromOurSessionClient()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var allowedKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        string[] serverArgs = ["--type", "auth", "--secret", SeedHex(serverKey), "--authorized", allowedKey.PublicKey.ToString(), "--echo"];
        await using OriginalPeer peer = await OriginalPeer.StartServerAsync(serverArgs);
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = strangerKey };
        options.AuthorizedKeys.Add(serverKey.PublicKey);
        using var session = new OssuarySession(options);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, peer.Port));

        // The original refuses an unknown client by resetting; both sides handshake again with
        // fresh keys, and the server gives up at its fifth reset with Disconnect (error).
        List<OssuaryReceiveResult> results = await SessionLoop.RunAsync(socket, session).Within();

        OriginalOutcome server = await peer.WaitForExitAsync();
        string trace = $"{string.Join(", ", results)}\n{server}";
        server.AssertError("bytes=0");
        Assert.Equal(5, Regex.Count(server.Stderr, "recv_handshake: OssuaryError::InvalidKey"));
        Assert.True(results.Count(r => r.Status == OssuaryReceiveStatus.Reset) == 4, trace);

        // The Disconnect carries only an error flag, not the server's reason: our client reports
        // ConnectionFailed, and so does the original's own client in the same place, which this
        // test runs against a second original server to compare (4 Resets, then "connection failed").
        Assert.True(results[^1] == new OssuaryReceiveResult(OssuaryReceiveStatus.Closed, 0, OssuaryErrorReason.ConnectionFailed), trace);
        await using OriginalPeer secondServer = await OriginalPeer.StartServerAsync(serverArgs);
        await using OriginalPeer originalClient = OriginalPeer.StartClient(
            secondServer.Port, null, "--secret", SeedHex(strangerKey), "--authorized", serverKey.PublicKey.ToString(), "--send", "hi", "--expect-echo");
        OriginalOutcome original = await originalClient.WaitForExitAsync();
        original.AssertError("connection failed", "received=0");
        Assert.Equal(4, Regex.Count(original.Stderr, "ConnectionReset \\(peer sent Reset\\)"));
        (await secondServer.WaitForExitAsync()).AssertError("bytes=0");
    }

    [Fact]
    public async Task AnEmptyMessageEachWayBetweenOurSessionAndTheOriginalServer()
    {
        using var serverKey = OssuaryIdentity.Generate();
        await using OriginalPeer peer = await OriginalPeer.StartServerAsync("--secret", SeedHex(serverKey), "--echo");
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client };
        options.AuthorizedKeys.Add(serverKey.PublicKey);
        using var session = new OssuarySession(options);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, peer.Port));
        byte[] last = RandomNumberGenerator.GetBytes(16384);
        var echoed = new List<byte[]>();

        // Pipes and streams have no empty write; the sans-IO core sends an empty message as one
        // 28-byte packet. Send one, then a full-size one; the original echoes each as one message.
        bool sent = false;
        List<OssuaryReceiveResult> results = await SessionLoop.RunAsync(socket, session, (result, plaintext, output) =>
        {
            while (session.WriteHandshake(output) > 0)
            {
            }

            if (session.IsEstablished && !sent)
            {
                Assert.Equal(28, session.WriteData([], output)); // an 8-byte header and a 20-byte body
                session.WriteData(last, output);
                sent = true;
            }

            if (result.Status == OssuaryReceiveStatus.Data)
            {
                echoed.Add(plaintext);
                if (echoed.Count == 2)
                {
                    session.Disconnect(error: false);
                }
            }
        }).Within();

        OriginalOutcome server = await peer.WaitForExitAsync();
        string trace = $"{string.Join(", ", results)}\n{server}";
        Assert.True(echoed.Count == 2 && echoed[0].Length == 0 && Sha256(echoed[1]) == Sha256(last), trace);
        Assert.True(results[^1].Status == OssuaryReceiveStatus.Closed, trace); // the original's Reset answering our Disconnect
        server.AssertOk("bytes=16384");
        Assert.Contains("data messages received: 2 (each echoed as one message)", server.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OurPipesClientEndsAtTheOriginalServersFirstRefusal()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var allowedKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        await using OriginalPeer peer = await OriginalPeer.StartServerAsync(
            "--type", "auth", "--secret", SeedHex(serverKey), "--authorized", allowedKey.PublicKey.ToString(), "--echo");
        var options = new OssuaryClientOptions { Identity = strangerKey };
        options.TrustedServerKeys.Add(serverKey.PublicKey);

        // The client's side of the handshake ends when it sends its authentication, so
        // ConnectAsync returns; the original's refusal (a Reset) then arrives on an established
        // byte stream, which cannot re-handshake (README "Decisions"): the read fails with
        // ConnectionReset and we tell the server with Disconnect (error), after one reset, not five.
        OssuaryException refused;
        await using (OssuaryClientConnection connection = await ConnectAsync(peer, options))
        {
            await connection.Transport.Output.WriteAsync("let me in"u8.ToArray());
            refused = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(connection.Transport.Input));
        }

        OriginalOutcome server = await peer.WaitForExitAsync();
        Assert.True(refused.Reason == OssuaryErrorReason.ConnectionReset, $"{refused}\n{server}");
        server.AssertError("connection failed", "bytes=0");
        Assert.Equal(1, Regex.Count(server.Stderr, "recv_handshake: OssuaryError::InvalidKey"));
    }

    [Fact]
    public async Task SixtyFourMebibytesEachWayBetweenOurStreamAndTheOriginalServer()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using OriginalPeer peer = await OriginalPeer.StartServerAsync(
            "--type", "auth", "--secret", SeedHex(serverKey), "--authorized", clientKey.PublicKey.ToString(), "--echo", "--timeout", "110");
        const int Total = 64 << 20;
        byte[] block = RandomNumberGenerator.GetBytes(1 << 20);

        await using (OssuaryStream stream = await AuthenticateStreamAsync(peer, clientKey, serverKey.PublicKey))
        {
            using var sentHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            Task<string> received = HashReadAsync(stream, Total);
            for (int sent = 0; sent < Total; sent += block.Length)
            {
                // A different block each time, so that a block lost or repeated shows in the hash.
                block[0] = (byte)(sent >> 20);
                sentHash.AppendData(block);
                await stream.WriteAsync(block).AsTask().Within(Long);
            }

            await stream.FlushAsync().Within(Long);
            Assert.Equal(Convert.ToHexStringLower(sentHash.GetHashAndReset()), await received.Within(Long));
        }

        OriginalOutcome server = await peer.WaitForExitAsync();
        server.AssertOk($"bytes={Total}");
        (long sentPackets, _, long receivedPackets, _) = server.Packets;
        Assert.True(sentPackets >= Total / 16384 && receivedPackets >= Total / 16384, server.ToString());
    }

    [Fact]
    public async Task MoreThan65536MessagesEachWayBetweenOurStreamAndTheOriginalServerWrapMessageIds()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using OriginalPeer peer = await OriginalPeer.StartServerAsync(
            "--type", "auth", "--secret", SeedHex(serverKey), "--authorized", clientKey.PublicKey.ToString(), "--echo", "--timeout", "110");
        const int Messages = 70_000;
        byte[] data = RandomNumberGenerator.GetBytes(Messages * 8);

        await using (OssuaryStream stream = await AuthenticateStreamAsync(peer, clientKey, serverKey.PublicKey))
        {
            Task<string> received = HashReadAsync(stream, data.Length);
            for (int i = 0; i < Messages; i++)
            {
                // FlushAsync waits until the write is sealed and sent: one write, one packet.
                await stream.WriteAsync(data.AsMemory(i * 8, 8));
                await stream.FlushAsync();
            }

            Assert.Equal(Sha256(data), await received.Within(Long));
        }

        // The original received 70,000 messages (msg_id wrapped past 65535) and echoed each as
        // one message, so its own msg_id wrapped too, and we accepted all of them.
        OriginalOutcome server = await peer.WaitForExitAsync();
        server.AssertOk($"bytes={data.Length}");
        Assert.Contains($"data messages received: {Messages} (each echoed as one message)", server.Stderr, StringComparison.Ordinal);
        (long sent, int sentWraps, long receivedPackets, int receivedWraps) = server.Packets;
        Assert.True(sent > Messages && sentWraps == 1 && receivedPackets > Messages && receivedWraps == 1, server.ToString());
    }

    [Fact]
    public async Task FullSizeMessagesBothWaysBetweenOurClientAndTheOriginalServer()
    {
        using var serverKey = OssuaryIdentity.Generate();
        await using OriginalPeer peer = await OriginalPeer.StartServerAsync("--secret", SeedHex(serverKey), "--echo");
        byte[] data = RandomNumberGenerator.GetBytes(3 * 16384);

        await using (OssuaryStream stream = await AuthenticateStreamAsync(peer, null, serverKey.PublicKey))
        {
            Task<string> received = HashReadAsync(stream, data.Length);
            for (int i = 0; i < 3; i++)
            {
                await stream.WriteAsync(data.AsMemory(i * 16384, 16384));
                await stream.FlushAsync();
            }

            Assert.Equal(Sha256(data), await received.Within());
        }

        // Each write of 16,384 bytes was one message of the largest size, and the original sent each back as one.
        OriginalOutcome server = await peer.WaitForExitAsync();
        server.AssertOk($"bytes={data.Length}");
        Assert.Contains("data messages received: 3 (each echoed as one message)", server.Stderr, StringComparison.Ordinal);
    }

    private static Task<OssuaryClientConnection> ConnectAsync(OriginalPeer peer, OssuaryClientOptions options) =>
        OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, peer.Port), options).Within();

    private static async Task<OssuaryStream> AuthenticateStreamAsync(OriginalPeer peer, OssuaryIdentity? identity, OssuaryPublicKey serverKey)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, peer.Port));
        var stream = new OssuaryStream(new NetworkStream(socket, ownsSocket: true));
        var options = new OssuaryClientOptions { Identity = identity };
        options.TrustedServerKeys.Add(serverKey);
        await stream.AuthenticateAsClientAsync(options).Within();
        Assert.Equal(serverKey, stream.Connection!.RemotePublicKey);
        return stream;
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes and returns their SHA-256.</summary>
    private static async Task<string> HashReadAsync(Stream stream, long count)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = new byte[64 * 1024];
        for (long left = count; left > 0;)
        {
            int read = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)));
            Assert.True(read > 0, $"the stream ended {left} bytes short of {count}");
            hash.AppendData(buffer, 0, read);
            left -= read;
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
