using System.IO.Pipelines;
using System.Net;
using System.Text;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// A receiver that cannot store the file (its disk fills up mid-file) fails as itself, not as the
/// sender's bad input, and tells the sender why instead of closing without an answer.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliReceiverStorageTests : CliTestBase
{
    [Fact]
    public async Task AReceiverWhoseDiskFillsUpTellsTheSenderWhyAndKeepsNothing()
    {
        File.WriteAllBytes(Path.Combine(Dir, "big.bin"), new byte[1_000_000]);
        string inbox = Path.Combine(Dir, "inbox");
        Directory.CreateDirectory(inbox);

        // 64 KiB is all the receiver may write to a file: the disk is full after that.
        ToolProcess receiver = StartWithFileSizeLimit(64, "receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        await WaitUntilListeningAsync(receiver);
        ToolResult sent = await RunAsync("send", "big.bin", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver));
        ToolResult received = await receiver.WaitForExitAsync();

        AssertFails(received, 1, "cannot save the file", "File too large");
        AssertFails(sent, 1, "the receiver could not save the file: file too large");
        Assert.Empty(Directory.GetFileSystemEntries(inbox));
    }

    [Fact]
    public async Task AReceiverThatCannotCreateItsPartialFileDoesNotSayItRemovedIt()
    {
        // The output directory went away between the start of the receive and the sender's header:
        // the partial file was never made, and the receiver said it "could not remove the partial
        // file" (here) or had "removed the partial file" (a directory it may not write to, as root cannot show).
        File.WriteAllBytes(Path.Combine(Dir, "small.bin"), new byte[1000]);
        string inbox = Path.Combine(Dir, "inbox");
        Directory.CreateDirectory(inbox);
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        Directory.Delete(inbox);
        ToolResult sent = await RunAsync("send", "small.bin", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver));
        ToolResult received = await receiver.WaitForExitAsync();

        AssertFails(received, 1, "cannot save the file", "no partial file was made");
        Assert.DoesNotContain("removed the partial file", received.Stderr, StringComparison.Ordinal);
        AssertFails(sent, 1, "the receiver could not save the file");
    }

    [Fact]
    public async Task AFileSentInSmallPiecesThatOutgrowsTheDiskIsReportedAsAStorageFailureToo()
    {
        // Pieces of 1,000 bytes reach the receiver in segments smaller than its file's buffer: the
        // write that fails is the buffer's flush, whose bytes stay buffered, and closing the file
        // wrote them again. That second failure, an EFBIG .NET reports as an argument error,
        // replaced the first: "unexpected error", and no answer for the sender. It depended on how
        // the sender's frames were cut, which a loaded machine changes (the test above failed so).
        string inbox = Path.Combine(Dir, "inbox");
        Directory.CreateDirectory(inbox);
        ToolProcess receiver = StartWithFileSizeLimit(64, "receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        await WaitUntilListeningAsync(receiver);
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(OssuaryPublicKey.Parse(ServerKey(receiver)));

        string answer;
        await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ServerPort(receiver)), options).Within())
        {
            Task sending = SendInPiecesAsync(connection.Transport.Output, "big.bin", 1_000_000, 1_000);
            answer = await ReadAnswerAsync(connection.Transport.Input).Within(ToolProcess.HardTimeout);
            connection.Abort();
            await sending.Within();
        }

        AssertFails(await receiver.WaitForExitAsync(), 1, "cannot save the file", "File too large");
        Assert.Equal("ERR the receiver could not save the file: file too large", answer);
        Assert.Empty(Directory.GetFileSystemEntries(inbox));
    }

    /// <summary>The transfer protocol's header and then the file's bytes, one flush (one frame) per piece, until the receiver stops taking them.</summary>
    private static async Task SendInPiecesAsync(PipeWriter output, string name, int length, int piece)
    {
        try
        {
            await output.WriteAsync(Encoding.ASCII.GetBytes($"OSSUARY-FILE/1 {length} {Convert.ToBase64String(Encoding.UTF8.GetBytes(name))}\n"));
            byte[] bytes = new byte[piece];
            for (int sent = 0; sent < length; sent += piece)
            {
                if ((await output.WriteAsync(bytes)).IsCompleted)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException)
        {
            // The receiver answered and the test let go of the connection.
        }
    }

    /// <summary>The receiver's one-line answer, or the bytes it sent before closing without one.</summary>
    private static async Task<string> ReadAnswerAsync(PipeReader input)
    {
        while (true)
        {
            ReadResult read = await input.ReadAsync();
            byte[] bytes = System.Buffers.BuffersExtensions.ToArray(read.Buffer);
            int end = Array.IndexOf(bytes, (byte)'\n');
            if (end >= 0)
            {
                return Encoding.UTF8.GetString(bytes, 0, end);
            }

            if (read.IsCompleted)
            {
                return $"(closed without an answer after '{Encoding.UTF8.GetString(bytes)}')";
            }

            input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }
}
