using System.Security.Cryptography;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// A receive killed mid-transfer (SIGKILL: no handler runs) leaves its partial file behind. The next
/// receive of that name into that folder removes it, and only it: a partial file another receive is
/// still writing stays. Nothing is ever resumed or appended to.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliAbandonedPartialTests : CliTestBase
{
    [Fact]
    public async Task TheNextReceiveOfANameRemovesThePartialFileOfAKilledReceiveButNotALiveOne()
    {
        string inbox = Path.Combine(Dir, "inbox");
        Directory.CreateDirectory(inbox);
        string live = await StartStalledReceiveAsync(inbox, "data.bin", 1000);
        ToolProcess killed = Start("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        string abandoned = await StalledPartialAsync(killed, inbox, "data.bin", 2000, except: live);

        await killed.SignalAsync("KILL");
        await killed.Exited;
        Assert.True(File.Exists(abandoned), "SIGKILL leaves the partial file: no handler runs");

        byte[] bytes = RandomNumberGenerator.GetBytes(100_000);
        File.WriteAllBytes(Path.Combine(Dir, "data.bin"), bytes);
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        ToolResult sent = await RunAsync("send", "data.bin", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver));
        ToolResult received = await receiver.WaitForExitAsync();

        AssertSucceeds(sent);
        AssertSucceeds(received);
        Assert.Contains($"removed {Path.GetFileName(abandoned)}, the partial file of a receive of 'data.bin' that ended without cleaning up", received.Stderr, StringComparison.Ordinal);
        Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(inbox, "data.bin")));
        Assert.Equal([Path.GetFileName(live), "data.bin"], Directory.GetFileSystemEntries(inbox).Select(path => Path.GetFileName(path)!).Order(StringComparer.Ordinal));
        Assert.Equal(1000, new FileInfo(live).Length);
    }

    [Fact]
    public async Task AReceiveIntoAFileSystemWithoutLocksStillSavesTheFile()
    {
        // Some file systems refuse flock (an NFS mount without its lock service: ENOLCK). The lock only
        // marks a partial file as in use; failing the whole receive for it lost a transfer that .NET's own
        // open of the file, which ignores such a refusal, had let through.
        string strace = await Support.DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        byte[] bytes = RandomNumberGenerator.GetBytes(100_000);
        File.WriteAllBytes(Path.Combine(Dir, "data.bin"), bytes);
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        ToolProcess receiver = ToolProcess.StartUnderStrace(strace, ["-f", "-qq", "-o", Path.Combine(Dir, "strace.log"), "-e", "trace=flock", "-e", "inject=flock:error=ENOLCK"],
            Dir, "receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        await WaitUntilListeningAsync(receiver);
        ToolResult sent = await RunAsync("send", "data.bin", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver));
        ToolResult received = await receiver.WaitForExitAsync();

        AssertSucceeds(sent);
        AssertSucceeds(received);
        Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(Dir, "inbox", "data.bin")));
        Assert.Contains("flock(", File.ReadAllText(Path.Combine(Dir, "strace.log")), StringComparison.Ordinal); // the refusal was injected
    }

    /// <summary>Starts a receive and a sender that sends <paramref name="count"/> bytes of stdin and then waits; returns the receive's partial file once they are in it.</summary>
    private async Task<string> StartStalledReceiveAsync(string inbox, string name, int count)
    {
        ToolProcess receiver = Start("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        return await StalledPartialAsync(receiver, inbox, name, count, except: null);
    }

    private async Task<string> StalledPartialAsync(ToolProcess receiver, string inbox, string name, int count, string? except)
    {
        await WaitUntilListeningAsync(receiver);
        ToolProcess sender = Start("send", "-", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver), "--name", name);
        await sender.StdinStream.WriteAsync(new byte[count]);
        await sender.StdinStream.FlushAsync();

        // Stdin stays open: the receive waits, its partial file holding what came.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            string? partial = Directory.GetFiles(inbox, $".{name}.*.part").FirstOrDefault(path => path != except && new FileInfo(path).Length == count);
            if (partial is not null)
            {
                return partial;
            }

            Assert.True(clock.Elapsed < ToolProcess.HardTimeout, $"no partial file of {count} bytes appeared:\n{receiver.Stderr}");
            await Task.Delay(20);
        }
    }
}
