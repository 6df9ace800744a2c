using System.Security.Cryptography;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary><c>ossuary send</c> and <c>ossuary receive</c> as separate processes.</summary>
[Collection(CliCollection.Name)]
public sealed class CliTransferTests : CliTestBase
{
    private const int FileSize = 10 * 1024 * 1024;

    [Fact]
    public async Task TenMiBArriveWithTheSenderAndReceiverAgreeingOnTheHash()
    {
        byte[] sha256 = WriteRandomFile(Path.Combine("outbox", "payload.bin"));
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        int port = ToolProcess.FreePort();
        ToolProcess receiver = await StartServerAsync("receive", "--port", Port(port), "--bind", "127.0.0.1", "-o", "inbox");
        string receiverKey = ServerKey(receiver);

        ToolResult sent = await RunAsync("send", Path.Combine("outbox", "payload.bin"), $"127.0.0.1:{port}", "--trust", receiverKey, "--known-hosts", "known_hosts");
        ToolResult received = await receiver.WaitForExitAsync();

        string hex = Convert.ToHexStringLower(sha256);
        AssertSucceeds(sent);
        Assert.Contains($"({FileSize} bytes), SHA-256 {hex} confirmed by the receiver", sent.Stderr, StringComparison.Ordinal);
        AssertSucceeds(received);
        Assert.Contains($"({FileSize} bytes), SHA-256 {hex} verified", received.Stderr, StringComparison.Ordinal);
        Assert.Contains("100%", received.Stderr, StringComparison.Ordinal); // plain progress lines when stderr is not a terminal
        Assert.Equal(sha256, SHA256.HashData(File.ReadAllBytes(Path.Combine(Dir, "inbox", "payload.bin"))));
        Assert.Equal(["payload.bin"], Directory.GetFiles(Path.Combine(Dir, "inbox")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task ReceiveOverwritesAnExistingFileOnlyWithForce()
    {
        byte[] sha256 = WriteRandomFile(Path.Combine("outbox", "payload.bin"));
        string existing = Path.Combine(Dir, "inbox", "payload.bin");
        Directory.CreateDirectory(Path.GetDirectoryName(existing)!);
        File.WriteAllText(existing, "keep me");

        int port = ToolProcess.FreePort();
        ToolProcess receiver = await StartServerAsync("receive", "--port", Port(port), "--bind", "127.0.0.1", "-o", "inbox");
        ToolResult sent = await RunAsync("send", Path.Combine("outbox", "payload.bin"), $"127.0.0.1:{port}", "--trust", ServerKey(receiver), "--known-hosts", "known_hosts");
        ToolResult refused = await receiver.WaitForExitAsync();

        AssertFails(refused, 2, "already exists; not overwriting it (use --force)");
        AssertFails(sent, 1, "the receiver refused the file: ERR the file exists on the receiver");
        Assert.Equal("keep me", File.ReadAllText(existing));
        Assert.Equal(["payload.bin"], Directory.GetFiles(Path.GetDirectoryName(existing)!).Select(Path.GetFileName));

        port = ToolProcess.FreePort();
        receiver = await StartServerAsync("receive", "--port", Port(port), "--bind", "127.0.0.1", "-o", "inbox", "--force");
        sent = await RunAsync("send", Path.Combine("outbox", "payload.bin"), $"127.0.0.1:{port}", "--trust", ServerKey(receiver), "--known-hosts", "known_hosts");
        ToolResult forced = await receiver.WaitForExitAsync();

        AssertSucceeds(sent);
        AssertSucceeds(forced);
        Assert.Equal(sha256, SHA256.HashData(File.ReadAllBytes(existing)));
        Assert.Equal(["payload.bin"], Directory.GetFiles(Path.GetDirectoryName(existing)!).Select(Path.GetFileName));
    }

    private byte[] WriteRandomFile(string name)
    {
        string path = Path.Combine(Dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        byte[] bytes = RandomNumberGenerator.GetBytes(FileSize);
        File.WriteAllBytes(path, bytes);
        return SHA256.HashData(bytes);
    }
}
