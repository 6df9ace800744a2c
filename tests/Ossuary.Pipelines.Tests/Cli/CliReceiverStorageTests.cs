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
}
