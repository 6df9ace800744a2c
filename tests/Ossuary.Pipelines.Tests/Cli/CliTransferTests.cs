using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

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
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        int port = ServerPort(receiver);
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

        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        int port = ServerPort(receiver);
        ToolResult sent = await RunAsync("send", Path.Combine("outbox", "payload.bin"), $"127.0.0.1:{port}", "--trust", ServerKey(receiver), "--known-hosts", "known_hosts");
        ToolResult refused = await receiver.WaitForExitAsync();

        AssertFails(refused, 2, "already exists; not overwriting it (use --force)");
        AssertFails(sent, 1, "the receiver refused the file: ERR the file exists on the receiver");
        Assert.Equal("keep me", File.ReadAllText(existing));
        Assert.Equal(["payload.bin"], Directory.GetFiles(Path.GetDirectoryName(existing)!).Select(Path.GetFileName));

        receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox", "--force");
        port = ServerPort(receiver);
        sent = await RunAsync("send", Path.Combine("outbox", "payload.bin"), $"127.0.0.1:{port}", "--trust", ServerKey(receiver), "--known-hosts", "known_hosts");
        ToolResult forced = await receiver.WaitForExitAsync();

        AssertSucceeds(sent);
        AssertSucceeds(forced);
        Assert.Equal(sha256, SHA256.HashData(File.ReadAllBytes(existing)));
        Assert.Equal(["payload.bin"], Directory.GetFiles(Path.GetDirectoryName(existing)!).Select(Path.GetFileName));
    }

    [Fact]
    public async Task ForceNeverReplacesADirectoryAndSaysSoBeforeTheTransfer()
    {
        // The whole file used to be received, then fail to take the directory's name, the sender told
        // only "ERR the receiver could not save the file: an I/O error".
        WriteRandomFile(Path.Combine("outbox", "report"));
        string inbox = Path.Combine(Dir, "inbox");
        Directory.CreateDirectory(Path.Combine(inbox, "report"));
        File.WriteAllText(Path.Combine(inbox, "report", "kept.txt"), "kept");

        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox", "--force");
        ToolResult sent = await RunAsync("send", Path.Combine("outbox", "report"), $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver));

        AssertFails(sent, 1, "the receiver refused the file: ERR a directory of that name exists on the receiver");
        AssertFails(await receiver.WaitForExitAsync(), 2, "is a directory; not replacing it, even with --force");
        Assert.Equal("kept", File.ReadAllText(Path.Combine(inbox, "report", "kept.txt")));
        Assert.Equal(["report"], Names(inbox));
    }

    [Fact]
    public async Task ReceiveWithoutForceNeverReplacesAFileThatTakesTheNameAsItNamesTheFile()
    {
        // Someone's file takes the name just as the receiver names the finished file: File.Move without
        // overwrite looked at the name, then renamed over whatever appeared meanwhile. strace (Debian's,
        // installed if missing) holds back every look at the name, and every rename or link to it, by
        // 2 s; the file appears once the receiver is held in a call on the name made after it wrote the
        // whole file (strace's log shows it), before the naming takes effect.
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        File.WriteAllBytes(Path.Combine(Dir, "payload.bin"), new byte[100_000]);
        string inbox = Directory.CreateDirectory(Path.Combine(Dir, "inbox")).FullName;
        string destination = Path.Combine(inbox, "payload.bin");
        using ToolProcess receiver = ToolProcess.StartUnderStrace(
            strace,
            ["-f", "-qq", "-ttt", "-o", Path.Combine(Dir, "strace.log"), "-P", destination,
             "-e", "trace=stat,lstat,newfstatat,statx,rename,renameat,renameat2,link,linkat",
             "-e", "inject=stat,lstat,newfstatat,statx:delay_exit=2000000",
             "-e", "inject=rename,renameat,renameat2,link,linkat:delay_enter=2000000"],
            Dir, "receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        await WaitUntilListeningAsync(receiver);
        Task<ToolResult> sending = RunAsync("send", "payload.bin", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver));

        // The whole file is in the partial file: the receiver is about to name it.
        Stopwatch waited = Stopwatch.StartNew();
        string? partial;
        while ((partial = Directory.GetFiles(inbox, ".payload.bin.*.part").FirstOrDefault(file => new FileInfo(file).Length == 100_000)) is null)
        {
            Assert.False(receiver.HasExited, $"the receiver ended before it had the file:\n{receiver.Stderr}");
            Assert.True(waited.Elapsed < ToolProcess.HardTimeout, "the receiver did not get the file in time");
            await Task.Delay(10);
        }

        // The receiver is held in its last look at the name or in the call that names the file: the file appears now.
        await WaitForCallAfterDraftAsync(Path.Combine(Dir, "strace.log"), destination, partial, receiver);
        File.WriteAllText(destination, "someone's own file");

        ToolResult received = await receiver.WaitForExitAsync();
        ToolResult sent = await sending;
        Assert.Equal("someone's own file", File.ReadAllText(destination));
        AssertFails(received, 2, "appeared during the transfer; not overwriting it (use --force)");
        AssertFails(sent, 1, "ERR the file exists on the receiver");
        Assert.Equal(["payload.bin"], Names(inbox));
    }

    [Fact]
    public async Task ReceiveNeverWritesThroughAPlantedPartSymlinkNorTouchesAnExistingPartFile()
    {
        byte[] sha256 = WriteRandomFile(Path.Combine("outbox", "report"));
        string inbox = Path.Combine(Dir, "inbox");
        Directory.CreateDirectory(inbox);
        File.WriteAllText(Path.Combine(Dir, "victim.txt"), "the victim");
        File.CreateSymbolicLink(Path.Combine(inbox, "report.part"), Path.Combine("..", "victim.txt"));
        File.WriteAllText(Path.Combine(inbox, "notes.txt.part"), "a user's own file");
        File.WriteAllText(Path.Combine(inbox, ".report.part"), "another one");

        await TransferAsync(Path.Combine("outbox", "report"), "-o", "inbox");

        Assert.Equal(sha256, SHA256.HashData(File.ReadAllBytes(Path.Combine(inbox, "report"))));
        Assert.Equal("the victim", File.ReadAllText(Path.Combine(Dir, "victim.txt")));
        Assert.Equal(Path.Combine("..", "victim.txt"), new FileInfo(Path.Combine(inbox, "report.part")).LinkTarget);
        Assert.Equal("a user's own file", File.ReadAllText(Path.Combine(inbox, "notes.txt.part")));
        Assert.Equal("another one", File.ReadAllText(Path.Combine(inbox, ".report.part")));
        Assert.Equal([".report.part", "notes.txt.part", "report", "report.part"], Names(inbox)); // no temporary file left
    }

    [Fact]
    public async Task ForceReplacesADestinationSymlinkInsteadOfWritingThroughIt()
    {
        byte[] sha256 = WriteRandomFile(Path.Combine("outbox", "report"));
        string inbox = Path.Combine(Dir, "inbox");
        Directory.CreateDirectory(inbox);
        File.WriteAllText(Path.Combine(Dir, "victim.txt"), "the victim");
        File.CreateSymbolicLink(Path.Combine(inbox, "report"), Path.Combine("..", "victim.txt"));

        // Without --force a symlink is an existing file too.
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        int port = ServerPort(receiver);
        AssertFails(await RunAsync("send", Path.Combine("outbox", "report"), $"127.0.0.1:{port}", "--trust", ServerKey(receiver)), 1, "ERR the file exists");
        AssertFails(await receiver.WaitForExitAsync(), 2, "already exists");

        await TransferAsync(Path.Combine("outbox", "report"), "-o", "inbox", "--force");

        Assert.Null(new FileInfo(Path.Combine(inbox, "report")).LinkTarget);
        Assert.Equal(sha256, SHA256.HashData(File.ReadAllBytes(Path.Combine(inbox, "report"))));
        Assert.Equal("the victim", File.ReadAllText(Path.Combine(Dir, "victim.txt")));
        Assert.Equal(["report"], Names(inbox));
    }

    [Fact]
    public async Task SendDashSendsStdin()
    {
        byte[] bytes = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17);
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        int port = ServerPort(receiver);
        ToolProcess sender = Start("send", "-", $"127.0.0.1:{port}", "--trust", ServerKey(receiver), "--name", "from-a-pipe.bin");
        await sender.StdinStream.WriteAsync(bytes);
        sender.CloseStdin();

        ToolResult sent = await sender.WaitForExitAsync();
        ToolResult received = await receiver.WaitForExitAsync();

        AssertSucceeds(sent);
        AssertSucceeds(received);
        Assert.Contains($"sent stdin ({bytes.Length} bytes)", sent.Stderr, StringComparison.Ordinal);
        Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(Dir, "inbox", "from-a-pipe.bin")));
        Assert.Equal(["from-a-pipe.bin"], Names(Path.Combine(Dir, "inbox")));
        Assert.False(File.Exists(Path.Combine(Dir, "-")));
    }

    [Fact]
    public async Task SendOfANamedPipeSendsWhatComesThroughIt()
    {
        // A FIFO has no length: asking for one failed the send with "unexpected error".
        byte[] bytes = RandomNumberGenerator.GetBytes(1024 * 1024 + 5);
        string fifo = Path.Combine(Dir, "stream.fifo");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", ["-m", "600", fifo]))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        ToolProcess sender = Start("send", "stream.fifo", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver));
        await using (var writer = new FileStream(fifo, FileMode.Open, FileAccess.Write))
        {
            await writer.WriteAsync(bytes);
        }

        ToolResult sent = await sender.WaitForExitAsync();
        ToolResult received = await receiver.WaitForExitAsync();

        AssertSucceeds(sent);
        AssertSucceeds(received);
        Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(Dir, "inbox", "stream.fifo")));
    }

    [Fact]
    public async Task ASendRefusedByTheAllowListSaysSoAndTheReceiverLogsTheKey()
    {
        WriteRandomFile("payload.bin");
        string allowed = WriteKeyFile("allowed.key");
        string intruder = WriteKeyFile("intruder.key");
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "--allow", allowed);
        int port = ServerPort(receiver);

        ToolResult sent = await RunAsync("send", "payload.bin", $"127.0.0.1:{port}", "--key", "intruder.key", "--trust", ServerKey(receiver));

        AssertFails(sent, 1, $"127.0.0.1:{port} ended the connection with an error without answering", "it refused this client", "--key is missing or not among them");
        await receiver.WaitForStderrAsync($"client key {intruder} is not authorized (to admit it: --allow {intruder})");
        Assert.False(receiver.HasExited); // still waiting for an authorized sender
    }

    [Fact]
    public async Task StrangersThatConnectAndSayNothingDoNotKeepTheSenderOut()
    {
        // receive took one connection at a time: each silent stranger held the sender out for a whole
        // handshake timeout (10 s), and three of them longer than the sender's own handshake waits.
        byte[] sha256 = WriteRandomFile("payload.bin");
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        var endPoint = new IPEndPoint(IPAddress.Loopback, ServerPort(receiver));
        var strangers = new List<System.Net.Sockets.Socket>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                strangers.Add(await RawPeer.ConnectAsync(endPoint)); // accepted before the sender: the backlog is first come, first served
            }

            ToolResult sent = await RunAsync("send", "payload.bin", $"127.0.0.1:{endPoint.Port}", "--trust", ServerKey(receiver));
            AssertSucceeds(sent);
            ToolResult received = await receiver.WaitForExitAsync();
            AssertSucceeds(received);
            Assert.Equal(sha256, SHA256.HashData(File.ReadAllBytes(Path.Combine(Dir, "inbox", "payload.bin"))));

            // The strangers were closed unserved once the file was in: nothing sent, no stray line.
            foreach (System.Net.Sockets.Socket stranger in strangers)
            {
                PeerClose close = await RawPeer.WaitForCloseAsync(stranger, ToolProcess.HardTimeout);
                Assert.True(close.Closed);
                Assert.Equal(0, close.BytesReceived);
            }

            Assert.DoesNotContain("still waiting", received.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            strangers.ForEach(stranger => stranger.Dispose());
        }
    }

    [Fact]
    public async Task AnInterruptedReceiveRemovesItsPartialFile()
    {
        string inbox = Path.Combine(Dir, "inbox");
        Directory.CreateDirectory(inbox);
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        int port = ServerPort(receiver);
        ToolProcess sender = Start("send", "-", $"127.0.0.1:{port}", "--trust", ServerKey(receiver), "--name", "big.bin");
        await sender.StdinStream.WriteAsync(new byte[4 * 1024 * 1024]);
        await sender.StdinStream.FlushAsync();
        await WaitUntilAsync(() => Directory.GetFiles(inbox).Any(f => new FileInfo(f).Length > 0));

        await receiver.SignalAsync("TERM"); // Ctrl+C or a service manager stopping it
        ToolResult interrupted = await receiver.WaitForExitAsync();
        ToolResult sent = await sender.WaitForExitAsync(); // its stdin still open

        AssertFails(interrupted, 143, "interrupted; removed the partial file"); // ended by the SIGTERM, after its cleanup
        Assert.Empty(Directory.GetFileSystemEntries(inbox));
        // Told with Disconnect (error): the receiver's disposal closed cleanly, and the sender said
        // "the receiver closed the connection during the transfer", as if it had chosen to.
        AssertFails(sent, 1, $"127.0.0.1:{port} ended the connection with an error without answering: it failed or was stopped during the transfer");
    }

    [Fact]
    public async Task AnInterruptedSendWaitingOnStdinSaysWhyItEndedAndTheReceiverKeepsNothing()
    {
        // producer | ossuary send - ..., stopped while the producer is quiet: a read of stdin cannot be cancelled.
        string inbox = Path.Combine(Dir, "inbox");
        Directory.CreateDirectory(inbox);
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        ToolProcess sender = Start("send", "-", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver), "--name", "quiet.bin");
        await sender.StdinStream.WriteAsync(new byte[100_000]);
        await sender.StdinStream.FlushAsync();
        await WaitUntilAsync(() => Directory.GetFiles(inbox).Any(f => new FileInfo(f).Length > 0));

        await sender.SignalAsync("TERM");
        ToolResult sent = await sender.WaitForExitAsync();
        ToolResult received = await receiver.WaitForExitAsync();

        AssertFails(sent, 143, "interrupted"); // ended by the SIGTERM, at the forced end too

        // Told with Disconnect (error), as any failed send: the read of stdin, which no token ends,
        // held the sender until its forced exit, which closed the socket without a word.
        AssertFails(received, 1, "the sender ended the connection with an error during the transfer (it failed or was stopped)");
        Assert.Empty(Directory.GetFileSystemEntries(inbox));
    }

    [Fact]
    public async Task ASendWaitingOnAQuietStdinEndsWhenTheReceiverRefusesTheFile()
    {
        // producer | ossuary send - ...: the receiver refuses the file (it exists there) and exits; the
        // sender, waiting for the producer's next bytes, learnt of it only then, and a producer that
        // stays quiet (tail -f) kept it waiting forever.
        string inbox = Path.Combine(Dir, "inbox");
        Directory.CreateDirectory(inbox);
        File.WriteAllText(Path.Combine(inbox, "quiet.bin"), "keep me");
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        using ToolProcess sender = Start("send", "-", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver), "--name", "quiet.bin");
        await sender.StdinStream.WriteAsync(new byte[1000]);
        await sender.StdinStream.FlushAsync();

        AssertFails(await receiver.WaitForExitAsync(), 2, "already exists; not overwriting it");
        ToolResult sent = await sender.WaitForExitAsync(); // stdin still open

        AssertFails(sent, 1, "the receiver refused the file: ERR the file exists on the receiver");
        Assert.Equal("keep me", File.ReadAllText(Path.Combine(inbox, "quiet.bin")));
    }

    [Fact]
    public async Task ASenderWhoseFileGrowsWhileSentSendsNoMoreThanItAnnouncedAndSaysTheFileGrew()
    {
        // A file that grows after its length was announced (a log being written): the sender read on
        // to its new end and sent the extra bytes where the receiver reads the SHA-256, so a real
        // receiver blamed a "SHA-256 mismatch", and the sender said "N of the M bytes announced" with N > M.
        const int Announced = 64 * 1024 * 1024; // more than the socket buffers and pipes hold
        string path = Path.Combine(Dir, "growing.log");
        File.WriteAllBytes(path, new byte[Announced]);
        using var receiverKey = OssuaryIdentity.Generate();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var headerRead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var grown = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<long> receiving = Task.Run(async () =>
        {
            using Socket socket = await listener.AcceptSocketAsync();
            await using var stream = new OssuaryStream(new NetworkStream(socket, ownsSocket: false));
            await stream.AuthenticateAsServerAsync(new OssuaryServerOptions { Mode = OssuaryServerMode.Unauthenticated, Identity = receiverKey });
            byte[] one = new byte[1];
            do
            {
                await stream.ReadExactlyAsync(one);
            }
            while (one[0] != (byte)'\n');

            headerRead.SetResult();
            await grown.Task; // the sender is held by the unread bytes until the file has grown
            long total = 0;
            byte[] buffer = new byte[64 * 1024];
            try
            {
                int read;
                while ((read = await stream.ReadAsync(buffer)) > 0)
                {
                    total += read;
                }
            }
            catch (OssuaryException)
            {
                // The sender's Disconnect (error): what came before it is counted.
            }

            return total;
        });

        using ToolProcess sender = Start("send", "growing.log", $"127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}", "--trust", receiverKey.PublicKey.ToString());
        await headerRead.Task.Within();
        using (var log = new FileStream(path, FileMode.Append, FileAccess.Write))
        {
            log.Write(new byte[1024 * 1024]);
        }

        grown.SetResult();
        ToolResult sent = await sender.WaitForExitAsync();

        AssertFails(sent, 1, $"growing.log grew while being sent: it holds more than the {Announced} bytes announced");
        Assert.Equal(Announced, await receiving.Within()); // the announced bytes, and neither more nor a hash
    }

    [Theory]
    [InlineData("/proc/version")] // length 0, content: failed as "grew while being sent"
    [InlineData("")] // a file that is really empty
    public async Task AFileOfLengthZeroArrivesWithWhatItHolds(string path)
    {
        if (path.Length == 0)
        {
            path = Path.Combine(Dir, "empty.txt");
            File.WriteAllBytes(path, []);
        }

        byte[] content = File.ReadAllBytes(path);
        Assert.Equal(0, new FileInfo(path).Length);
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        int port = ServerPort(receiver);

        ToolResult sent = await RunAsync("send", path, $"127.0.0.1:{port}", "--trust", ServerKey(receiver), "--known-hosts", "known_hosts", "--name", "copy");
        ToolResult received = await receiver.WaitForExitAsync();

        AssertSucceeds(sent);
        AssertSucceeds(received);
        Assert.Contains($"({content.Length} bytes), SHA-256 {Convert.ToHexStringLower(SHA256.HashData(content))} confirmed by the receiver", sent.Stderr, StringComparison.Ordinal);
        Assert.Equal(content, File.ReadAllBytes(Path.Combine(Dir, "inbox", "copy")));
    }

    [Fact]
    public async Task ASenderThatVanishesMidTransferLeavesNoPartialFile()
    {
        string inbox = Path.Combine(Dir, "inbox");
        Directory.CreateDirectory(inbox);
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        int port = ServerPort(receiver);
        ToolProcess sender = Start("send", "-", $"127.0.0.1:{port}", "--trust", ServerKey(receiver), "--name", "big.bin");
        await sender.StdinStream.WriteAsync(new byte[4 * 1024 * 1024]);
        await sender.StdinStream.FlushAsync();
        await WaitUntilAsync(() => Directory.GetFiles(inbox).Any(f => new FileInfo(f).Length > 0));

        sender.Dispose(); // killed
        ToolResult received = await receiver.WaitForExitAsync();

        // The connection failed, not the receiver's disk (an OssuaryException is an IOException too).
        AssertFails(received, 1, "the connection failed during the transfer", "removed the partial file");
        Assert.DoesNotContain("cannot save the file", received.Stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(inbox));
    }

    [Fact]
    public async Task AnAnnouncedLengthNoTransferCouldReachFailsAsATransferNotAsAnUnexpectedError()
    {
        // The time left at the rate seen (long.MaxValue bytes at a byte a millisecond) is past what a
        // TimeSpan holds: the progress line threw OverflowException, "unexpected error", and the
        // receive ended at the first bytes instead of taking what the sender sends.
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(OssuaryPublicKey.Parse(ServerKey(receiver)));

        await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ServerPort(receiver)), options))
        {
            string name = Convert.ToBase64String("huge.bin"u8);
            await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes($"OSSUARY-FILE/1 {long.MaxValue} {name}\nx"));
            await WaitUntilAsync(() => receiver.HasExited || receiver.Stderr.Contains("receive [", StringComparison.Ordinal));
            await connection.Transport.Output.WriteAsync("y"u8.ToArray());
        }

        ToolResult received = await receiver.WaitForExitAsync();

        AssertFails(received, 1, $"the sender closed the connection after 2 of {long.MaxValue} bytes", "removed the partial file");
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(Dir, "inbox")));
    }

    // Terminal escapes, and Unicode's bidirectional controls: U+202E (right-to-left override) shows
    // "invoice\u202Efdp.exe" as "invoiceexe.pdf", a name that reads as one file in the receiver's
    // terminal and listing and is another.
    [Theory]
    [InlineData("evil\u001b[2J\u0007.txt", "evil?[2J?.txt")]
    [InlineData("invoice\u202Efdp\u2066.exe", "invoice?fdp?.exe")]
    public async Task ASenderSuppliedNameWithControlCharactersIsRefusedAndPrintedSafely(string unsafeName, string printed)
    {
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        int port = ServerPort(receiver);
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(OssuaryPublicKey.Parse(ServerKey(receiver)));

        await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), options))
        {
            string name = Convert.ToBase64String(Encoding.UTF8.GetBytes(unsafeName));
            await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes($"OSSUARY-FILE/1 3 {name}\n"));
            ToolResult refused = await receiver.WaitForExitAsync();

            AssertFails(refused, 1, $"the sender asked for an unsafe file name '{printed}'");
            foreach (char hidden in unsafeName.Where(c => !printed.Contains(c, StringComparison.Ordinal)))
            {
                Assert.DoesNotContain(hidden, refused.Stderr);
            }
        }

        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(Dir, "inbox")));
    }

    [Fact]
    public async Task ANamedDashIsNeverSavedAsAFileCalledDash()
    {
        // The README: "no file named '-' is ever made" ('-' is stdin or stdout to every command, so
        // a script's 'cat inbox/*' or 'ossuary send inbox/- ...' would read stdin instead). The
        // receiver saved a sender's name '-' as inbox/-.
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        File.WriteAllText(Path.Combine(Dir, "file.txt"), "data");
        using (var closed = new ClosedPort())
        {
            AssertFails(await RunAsync("send", "file.txt", $"127.0.0.1:{closed.Port}", "--trust", WriteKeyFile("any.key"), "--name", "-"),
                2, "--name cannot be '-'");
        }

        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(OssuaryPublicKey.Parse(ServerKey(receiver)));
        await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ServerPort(receiver)), options))
        {
            string name = Convert.ToBase64String(Encoding.UTF8.GetBytes("-"));
            await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes($"OSSUARY-FILE/1 4 {name}\ndata"));
            string answer = await ReadLineAsync(connection.Transport.Input).Within(TimeSpan.FromSeconds(20));

            Assert.StartsWith("ERR ", answer, StringComparison.Ordinal);
            AssertFails(await receiver.WaitForExitAsync(), 1, "the sender asked for an unsafe file name '-'");
        }

        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(Dir, "inbox")));
    }

    [Fact]
    public async Task ANameLongerThanAFileNameCanBeIsRefusedBeforeAnyByteIsSent()
    {
        // 300 bytes: no file system takes it (255 at most). The receiver took the whole file, then
        // failed to name it and told the sender only "an I/O error".
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        File.WriteAllText(Path.Combine(Dir, "file.txt"), "data");
        string tooLong = new('n', 300);
        using (var closed = new ClosedPort())
        {
            AssertFails(await RunAsync("send", "file.txt", $"127.0.0.1:{closed.Port}", "--trust", WriteKeyFile("any.key"), "--name", tooLong),
                2, "--name is 300 bytes long; a file name has at most 255");
        }

        // Another sender's header alone is answered at once, before any of the file's bytes.
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");
        var options = new OssuaryClientOptions();
        options.TrustedServerKeys.Add(OssuaryPublicKey.Parse(ServerKey(receiver)));
        await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ServerPort(receiver)), options))
        {
            string name = Convert.ToBase64String(Encoding.UTF8.GetBytes(tooLong));
            await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes($"OSSUARY-FILE/1 3 {name}\n"));
            string answer = await ReadLineAsync(connection.Transport.Input).Within(TimeSpan.FromSeconds(20));

            Assert.StartsWith("ERR ", answer, StringComparison.Ordinal);
            Assert.Contains("a file name of 300 bytes", answer, StringComparison.Ordinal);
        }

        AssertFails(await receiver.WaitForExitAsync(), 1, "the sender asked for a file name of 300 bytes; a file name has at most 255");
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(Dir, "inbox")));
    }

    private static async Task<string> ReadLineAsync(System.IO.Pipelines.PipeReader input)
    {
        while (true)
        {
            System.IO.Pipelines.ReadResult read = await input.ReadAsync();
            byte[] bytes = read.Buffer.ToArray();
            int end = Array.IndexOf(bytes, (byte)'\n');
            if (end >= 0)
            {
                return Encoding.UTF8.GetString(bytes, 0, end);
            }

            Assert.False(read.IsCompleted, $"the receiver closed without an answer; it sent '{Encoding.UTF8.GetString(bytes)}'");
            input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    [Fact]
    public async Task AFileWhoseNameIsNearTheSystemsLimitArrives()
    {
        // 240 bytes: a valid name (the limit is 255), but the partial file's name around it is not.
        string name = new string('n', 236) + ".bin";
        File.WriteAllText(Path.Combine(Dir, name), "long name\n");
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));

        await TransferAsync(name, "-o", "inbox");

        Assert.Equal([name], Names(Path.Combine(Dir, "inbox")));
    }

    private async Task TransferAsync(string file, params string[] receiveOptions)
    {
        ToolProcess receiver = await StartServerAsync(["receive", "--port", "0", "--bind", "127.0.0.1", .. receiveOptions]);
        int port = ServerPort(receiver);
        ToolResult sent = await RunAsync("send", file, $"127.0.0.1:{port}", "--trust", ServerKey(receiver), "--known-hosts", "known_hosts");
        ToolResult received = await receiver.WaitForExitAsync();
        AssertSucceeds(sent);
        AssertSucceeds(received);
    }

    private static string[] Names(string directory) =>
        Directory.GetFileSystemEntries(directory).Select(path => Path.GetFileName(path)!).Order(StringComparer.Ordinal).ToArray();

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < ToolProcess.HardTimeout, "the condition did not come true in time");
            await Task.Delay(20);
        }
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
