using System.Net;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>A sender that does what the real one only does when it fails: the receiver says what happened, in its own terms.</summary>
[Collection(CliCollection.Name)]
public sealed class CliForgedSenderTests : CliTestBase
{
    [Fact]
    public async Task ASenderThatFailsBeforeItsHeaderIsNotCalledARefusal()
    {
        // A receiver admits any sender (or refuses it itself): it said the connection failed because
        // "it refused this client ... --key", the words for a client that a server turned away.
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(OssuaryPublicKey.Parse(ServerKey(receiver)));
        await using (OssuaryClientConnection sender = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ServerPort(receiver)), options).Within())
        {
            await sender.Transport.Output.CompleteAsync(new IOException("the sender's disk failed")); // Disconnect (error), no header
        }

        ToolResult received = await receiver.WaitForExitAsync();
        AssertFails(received, 1, "the sender ended the connection with an error before sending a file (it failed or was stopped)");
        Assert.DoesNotContain("refused this client", received.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AReceiverWhoseRefusalCannotReachTheSenderStillSaysWhyItRefused()
    {
        // The file exists, so the receiver answers "ERR the file exists"; the sender has already failed
        // (Disconnect (error) right behind its header), so that answer cannot be sent. The receiver's own
        // message then said only that the connection failed, not that the file exists.
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        await File.WriteAllTextAsync(Path.Combine(Dir, "inbox", "kept.txt"), "the receiver's own");
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(OssuaryPublicKey.Parse(ServerKey(receiver)));
        await using (OssuaryClientConnection sender = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ServerPort(receiver)), options).Within())
        {
            await sender.Transport.Output.WriteAsync(System.Text.Encoding.UTF8.GetBytes($"OSSUARY-FILE/1 5 {Convert.ToBase64String("kept.txt"u8)}\n"));
            await sender.Transport.Output.CompleteAsync(new IOException("the sender's disk failed")); // header, then Disconnect (error)
        }

        ToolResult received = await receiver.WaitForExitAsync();
        AssertFails(received, 2, "already exists; not overwriting it (use --force)");
        Assert.Equal("the receiver's own", await File.ReadAllTextAsync(Path.Combine(Dir, "inbox", "kept.txt")));
    }
}
