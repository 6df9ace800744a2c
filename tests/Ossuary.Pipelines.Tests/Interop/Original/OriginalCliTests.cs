using System.Text;
using Ossuary.Pipelines.Tests.Cli;
using static Ossuary.Pipelines.Tests.Interop.Original.OriginalKeys;

namespace Ossuary.Pipelines.Tests.Interop.Original;

/// <summary>
/// Our <c>ossuary listen</c> and <c>ossuary connect</c> against the original libossuary 0.5.2
/// (ref-peer), over TCP on 127.0.0.1. They check exit codes and data, not the tool's status
/// text (which may change), and ref-peer's RESULT line and exit code.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class OriginalCliTests : CliTestBase
{
    /// <summary>ASCII text, so that the tool's stdout compares byte for byte; longer than a line buffer, shorter than one message.</summary>
    private static readonly string Text = string.Concat(Enumerable.Range(0, 400).Select(i => $"line {i:D4} of the text\n"));

    [Fact]
    public async Task OurListenEchoesForAnOriginalClientWithAKey()
    {
        string serverKey = WriteKeyFile("server.key");
        using var clientKey = OssuaryIdentity.Generate();
        ToolProcess server = await StartServerAsync(
            "listen", "--port", "0", "--bind", "127.0.0.1", "--key", "server.key", "--allow", clientKey.PublicKey.ToString(), "--echo", "--once");
        int port = ServerPort(server);

        await using OriginalPeer peer = OriginalPeer.StartClient(
            port, NewSeed(), "--secret", SeedHex(clientKey), "--authorized", serverKey, "--send", "hello", "--send-bytes", "100000", "--expect-echo");
        OriginalOutcome client = await peer.WaitForExitAsync();

        // ref-peer compared every echoed byte with what it sent; the original's clean Disconnect ends our --once server with 0.
        client.AssertOk("sent=100005 received=100005");
        AssertSucceeds(await server.WaitForExitAsync());
    }

    [Fact]
    public async Task OurListenPrintsWhatAnAnonymousOriginalClientTrustingOnFirstUseSends()
    {
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once");
        int port = ServerPort(server);
        string serverKey = ServerKey(server);
        server.CloseStdin(); // listen < /dev/null: a --once server whose stdin still had data would report it unsent

        await using OriginalPeer peer = OriginalPeer.StartClient(port, null, "--tofu", "--send", Text);
        OriginalOutcome client = await peer.WaitForExitAsync();
        ToolResult result = await server.WaitForExitAsync();

        client.AssertOk($"sent={Text.Length}");
        Assert.Contains($"untrusted server key {serverKey}: trusting it (TOFU)", client.Stderr, StringComparison.Ordinal);
        AssertSucceeds(result);
        Assert.Equal(Sha256(Encoding.ASCII.GetBytes(Text)), Sha256(Encoding.UTF8.GetBytes(result.Stdout)));
    }

    [Fact]
    public async Task OurListenRefusesAnOriginalClientNotOnItsAllowList()
    {
        using var allowedKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        ToolProcess server = await StartServerAsync(
            "listen", "--port", "0", "--bind", "127.0.0.1", "--allow", allowedKey.PublicKey.ToString(), "--echo", "--once");
        int port = ServerPort(server);
        string serverKey = ServerKey(server);

        await using OriginalPeer peer = OriginalPeer.StartClient(
            port, null, "--secret", SeedHex(strangerKey), "--authorized", serverKey, "--send", "let me in", "--expect-echo");
        OriginalOutcome client = await peer.WaitForExitAsync();

        // The refused client never reached the echo; the server printed nothing of the client's
        // (the refusal is its --once connection, so it ends with exit 1).
        client.AssertError("received=0");
        Assert.Equal(string.Empty, server.Stdout);
    }

    [Fact]
    public async Task OurConnectSendsStdinToTheOriginalAuthenticatedServer()
    {
        string clientKey = WriteKeyFile("client.key");
        using var serverKey = OssuaryIdentity.Generate();
        await using OriginalPeer peer = await OriginalPeer.StartServerAsync("--type", "auth", "--secret", SeedHex(serverKey), "--authorized", clientKey);

        ToolResult result = await ToolProcess.RunWithInputAsync(
            Dir, Text, "connect", $"127.0.0.1:{peer.Port}", "--key", "client.key", "--trust", serverKey.PublicKey.ToString(), "--wait", "0.2");
        OriginalOutcome server = await peer.WaitForExitAsync();

        AssertSucceeds(result);
        server.AssertOk($"bytes={Text.Length}");
        server.AssertPrinted(Encoding.ASCII.GetBytes(Text));
        Assert.Contains($"established; remote key {clientKey}", server.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OurConnectTrustsTheOriginalServerOnFirstUse()
    {
        await using OriginalPeer peer = await OriginalPeer.StartServerAsync("--echo");

        ToolResult result = await EchoAsync(Text, "connect", $"127.0.0.1:{peer.Port}", "--tofu", "--known-hosts", "known_hosts", "--wait", "2");
        OriginalOutcome server = await peer.WaitForExitAsync();

        AssertSucceeds(result);
        Assert.Equal(Sha256(Encoding.ASCII.GetBytes(Text)), Sha256(Encoding.UTF8.GetBytes(result.Stdout)));
        server.AssertOk($"bytes={Text.Length}");
        string drawn = System.Text.RegularExpressions.Regex.Match(server.Stderr, "the library drew key ([0-9a-f]{64})").Groups[1].Value;
        Assert.Contains(drawn, File.ReadAllText(Path.Combine(Dir, "known_hosts")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task OurConnectRefusesAnOriginalServerItDoesNotTrust()
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var otherKey = OssuaryIdentity.Generate();
        await using OriginalPeer peer = await OriginalPeer.StartServerAsync("--secret", SeedHex(serverKey), "--echo");

        ToolResult result = await ToolProcess.RunWithInputAsync(
            Dir, Text, "connect", $"127.0.0.1:{peer.Port}", "--trust", otherKey.PublicKey.ToString(), "--known-hosts", "known_hosts");
        OriginalOutcome server = await peer.WaitForExitAsync();

        Assert.True(result.ExitCode == 3, $"expected exit 3 (untrusted server key):\n{result}");
        Assert.Equal(string.Empty, result.Stdout);
        server.AssertError("bytes=0");
    }

    [Fact]
    public async Task TheOriginalAuthenticatedServerRefusesOurConnectWithAnUnknownKey()
    {
        WriteKeyFile("client.key");
        using var serverKey = OssuaryIdentity.Generate();
        using var allowedKey = OssuaryIdentity.Generate();
        await using OriginalPeer peer = await OriginalPeer.StartServerAsync(
            "--type", "auth", "--secret", SeedHex(serverKey), "--authorized", allowedKey.PublicKey.ToString(), "--echo");

        ToolResult result = await ToolProcess.RunWithInputAsync(
            Dir, Text, "connect", $"127.0.0.1:{peer.Port}", "--key", "client.key", "--trust", serverKey.PublicKey.ToString());
        OriginalOutcome server = await peer.WaitForExitAsync();

        Assert.True(result.ExitCode == 1, $"expected exit 1 (refused):\n{result}");
        Assert.Equal(string.Empty, result.Stdout);
        server.AssertError("bytes=0");
    }
}
