using System.Text.RegularExpressions;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// "OK" from the receiver lets the sender report success (and its user delete the original): by
/// then the file must be on disk, its bytes and its name, not only in the page cache.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliDurableReceiveTests : CliTestBase
{
    [Fact]
    public async Task ReceiveSyncsTheFileBeforeNamingItAndTheDirectoryAfter()
    {
        // The kernel's view of it: strace, from Debian's package, installed here if missing.
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        File.WriteAllBytes(Path.Combine(Dir, "payload.bin"), new byte[100_000]);
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        string log = Path.Combine(Dir, "strace.log");
        var receiver = ToolProcess.StartTraced(strace, Dir, "fsync,fdatasync,rename,renameat,renameat2,link,linkat", log,
            "receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        using (receiver)
        {
            await WaitUntilListeningAsync(receiver);
            ToolResult sent = await RunAsync("send", "payload.bin", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver));
            AssertSucceeds(await receiver.WaitForExitAsync());
            AssertSucceeds(sent);
        }

        // strace -y shows each descriptor's path; -f lines are in the order the calls were made.
        string[] calls = File.ReadAllLines(log);
        int synced = Array.FindIndex(calls, line => Regex.IsMatch(line, @"f(data)?sync\(\d+<[^>]*/inbox/\.payload\.bin\.[0-9a-f]+\.part>\) = 0"));
        int named = Array.FindIndex(calls, line => Regex.IsMatch(line, @"(rename|link)\w*\(.*\.part"".*/inbox/payload\.bin"".*= 0"));
        int dirSynced = Array.FindLastIndex(calls, line => Regex.IsMatch(line, @"f(data)?sync\(\d+<[^>]*/inbox>\) = 0"));
        string trace = string.Join('\n', calls.Where(line => line.Contains("inbox", StringComparison.Ordinal)));
        Assert.True(named >= 0, $"no rename to payload.bin:\n{trace}");
        Assert.True(synced >= 0 && synced < named, $"the file was not synced before it got its name:\n{trace}");
        Assert.True(dirSynced > named, $"the directory was not synced after the file got its name:\n{trace}");
    }

    [Fact]
    public async Task AFailedDirectorySyncAfterTheFileIsNamedSaysWhereTheFileIs()
    {
        // The directory's fsync fails (strace injects EIO into it alone): the file is whole and named, but its
        // name may not survive a power loss. Not "OK" (the sender's user would delete the original), and not
        // "could not save", which the sender was told though the file was there: both sides say the same.
        using ToolProcess receiver = await StartReceiverWithItsDirectorySyncAsync("error=EIO");
        string inbox = Path.Combine(Dir, "inbox");

        ToolResult sent = await RunAsync("send", "payload.bin", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver));

        AssertFails(sent, 1, "the receiver saved the file, but could not sync its folder, so its name may not survive a power loss", "keep the original");
        Assert.DoesNotContain("could not save", sent.Stderr, StringComparison.Ordinal);
        ToolResult received = await receiver.WaitForExitAsync();
        AssertFails(received, 1, "received inbox/payload.bin (100000 bytes)", "cannot sync directory", "may not survive a power loss");
        Assert.DoesNotContain("removed the partial file", received.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("cannot save", received.Stderr, StringComparison.Ordinal);
        Assert.Equal(100_000, new FileInfo(Path.Combine(inbox, "payload.bin")).Length);
    }

    [Fact]
    public async Task ASenderGoneAfterTheFileIsNamedLeavesAReceiverThatSaysTheFileIsSavedButTheSenderWasNotTold()
    {
        // The directory's fsync is held back (strace delays it, on the directory alone): the file has
        // its name, "OK" is not sent yet, and the sender goes away meanwhile: its user saw no
        // confirmation. The receiver only said it received the file, not that its sender may not
        // know: one user has the file sent again while the other sees it arrived.
        using ToolProcess receiver = await StartReceiverWithItsDirectorySyncAsync("delay_exit=5000000");
        string inbox = Path.Combine(Dir, "inbox");
        ToolProcess sender = Start("send", "payload.bin", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver));

        string saved = Path.Combine(inbox, "payload.bin");
        await WaitForFileAsync(saved, receiver);

        // It goes away (its process killed, so its socket closes without a Disconnect) while the
        // directory's fsync is held.
        await sender.SignalAsync("KILL");
        await sender.WaitForExitAsync();

        // The file is whole and verified, but its "OK" met a connection already over and was never sent: a failure
        // (it exited 0, and said only that the sender "may" not have been told).
        ToolResult received = await receiver.WaitForExitAsync();
        AssertFails(received, 1, "the connection ended before the answer could be sent", "received inbox/payload.bin (100000 bytes)", "the sender was not told");
        Assert.Equal(100_000, new FileInfo(saved).Length);
    }

    [Fact]
    public async Task ASenderInterruptedWhileWaitingForTheAnswerTellsTheReceiverItFailed()
    {
        // Everything is sent and the sender waits for "OK" (held back: strace delays the receiver's
        // directory fsync) when it is stopped. Its disposal closed cleanly, which to the receiver is a
        // sender that read the answer; its Disconnect (error) says that it may not have.
        using ToolProcess receiver = await StartReceiverWithItsDirectorySyncAsync("delay_exit=5000000");
        string inbox = Path.Combine(Dir, "inbox");
        ToolProcess sender = Start("send", "payload.bin", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver));

        await WaitForFileAsync(Path.Combine(inbox, "payload.bin"), receiver);
        await sender.SignalAsync("TERM");
        AssertFails(await sender.WaitForExitAsync(), 143, "interrupted");

        // Its Disconnect (error) came before "OK" could go: never sent, said, and no success.
        ToolResult received = await receiver.WaitForExitAsync();
        AssertFails(received, 1, "the connection ended before the answer could be sent", "the sender was not told");
    }

    /// <summary>
    /// A payload to send, and a receiver into the folder "inbox" whose fsync of that directory alone is changed by
    /// strace's <paramref name="injection"/> (fails, or is held back): the file has its name by then.
    /// </summary>
    private async Task<ToolProcess> StartReceiverWithItsDirectorySyncAsync(string injection)
    {
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        File.WriteAllBytes(Path.Combine(Dir, "payload.bin"), new byte[100_000]);
        string inbox = Directory.CreateDirectory(Path.Combine(Dir, "inbox")).FullName;
        ToolProcess receiver = ToolProcess.StartUnderStrace(strace, ["-f", "-o", Path.Combine(Dir, "strace.log"), "-P", inbox, "-e", "trace=fsync", "-e", "inject=fsync:" + injection],
            Dir, "receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        await WaitUntilListeningAsync(receiver);
        return receiver;
    }

    private static async Task WaitForFileAsync(string path, ToolProcess tool)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!File.Exists(path))
        {
            Assert.False(tool.HasExited, $"the tool ended before {path} appeared:\n{tool.Stderr}");
            Assert.True(waited.Elapsed < ToolProcess.HardTimeout, $"{path} never appeared:\n{tool.Stderr}");
            await Task.Delay(10);
        }
    }
}
