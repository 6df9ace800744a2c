using System.Buffers;
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

    [Fact]
    public async Task ASenderThatClosesBeforeTheAnswerIsSaidNotToKnowTheFileArrived()
    {
        // The whole file and its hash, then Disconnect (clean) without waiting for the answer: the receiver's "OK"
        // was written to a connection already over, never sent, and the receiver exited 0 as if the sender knew.
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        byte[] file = "the file's bytes"u8.ToArray();
        await SendThenCloseAsync(receiver, [
            .. System.Text.Encoding.UTF8.GetBytes($"OSSUARY-FILE/1 {file.Length} {Convert.ToBase64String("sent.txt"u8)}\n"),
            .. file,
            .. System.Security.Cryptography.SHA256.HashData(file)]);

        ToolResult received = await receiver.WaitForExitAsync();
        AssertFails(received, 1, "the connection ended before the answer could be sent", "received inbox/sent.txt (16 bytes)", "the sender was not told");
        Assert.Equal(file, await File.ReadAllBytesAsync(Path.Combine(Dir, "inbox", "sent.txt")));
    }

    [Fact]
    public async Task ARefusalThatCannotReachASenderThatClosedIsSaid()
    {
        // A header for a file that exists, then Disconnect (clean): "ERR the file exists" was written to a connection
        // already over, and the receiver said nothing of it, though it says so when the write fails.
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        await File.WriteAllTextAsync(Path.Combine(Dir, "inbox", "kept.txt"), "the receiver's own");
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        await SendThenCloseAsync(receiver, System.Text.Encoding.UTF8.GetBytes($"OSSUARY-FILE/1 5 {Convert.ToBase64String("kept.txt"u8)}\n"));

        ToolResult received = await receiver.WaitForExitAsync();
        AssertFails(received, 2, "already exists; not overwriting it (use --force)");
        Assert.Contains("ossuary: could not tell the sender why the transfer failed: it had closed the connection", received.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ASendersMalformedDisconnectIsSaidToBeOne()
    {
        // A Disconnect too short to hold its error flag, before any header: the session counts it as a failure, and the
        // receiver said the sender "ended the connection with an error ... (it failed or was stopped)".
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(OssuaryPublicKey.Parse(ServerKey(receiver)));
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ServerPort(receiver))).Within();
        await using var network = new System.Net.Sockets.NetworkStream(socket, ownsSocket: false);
        await using (OssuaryDuplexPipe sender = await OssuaryDuplexPipe.ConnectAsync(
            new DuplexPipe(System.IO.Pipelines.PipeReader.Create(network), System.IO.Pipelines.PipeWriter.Create(network)), options).Within())
        {
            await socket.SendAsync(new byte[] { 0, 2, 0, 0, 0, 0x10, 0, 0, 0, 0 }); // Disconnect, a body of 2 bytes (zeros)
            ToolResult received = await receiver.WaitForExitAsync();

            AssertFails(received, 1, "the sender ended the connection with a malformed Disconnect (2 bytes of body where 4 are due)");
        }
    }

    /// <summary>Connects to <paramref name="receiver"/>, sends <paramref name="bytes"/> and Disconnect (clean) in one go, without reading.</summary>
    private static async Task SendThenCloseAsync(ToolProcess receiver, byte[] bytes)
    {
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(OssuaryPublicKey.Parse(ServerKey(receiver)));
        await using OssuaryClientConnection sender = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ServerPort(receiver)), options).Within();
        sender.Transport.Output.Write(bytes);
        await sender.Transport.Output.CompleteAsync();
    }
}
