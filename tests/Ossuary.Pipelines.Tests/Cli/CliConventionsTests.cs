using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>The conventions of ssh, nc and wg that users bring: '-' for stdio, key file quirks, ~/.ossuary, --bind names.</summary>
[Collection(CliCollection.Name)]
public sealed class CliConventionsTests : CliTestBase
{
    [Fact]
    public async Task KeygenToStdoutPipesIntoPubkeyFromStdin()
    {
        // ossuary keygen -o - | ossuary pubkey -   (wg genkey | wg pubkey)
        ToolResult made = await RunAsync("keygen", "-o", "-");
        AssertSucceeds(made);
        Assert.Matches("^[0-9a-f]{64}\n$", made.Stdout); // the secret alone
        string publicKey = made.Stderr.Split("public key ")[1].Trim();

        ToolResult printed = await RunWithInputAsync(made.Stdout, "pubkey", "-");

        AssertSucceeds(printed);
        Assert.Equal(publicKey + "\n", printed.Stdout);
        Assert.NotEqual(made.Stdout.Trim(), publicKey);
        Assert.False(File.Exists(Path.Combine(Dir, "-")));
        Assert.Empty(Directory.GetFileSystemEntries(Dir));
    }

    [Fact]
    public async Task DashReadsStdinWhereStdinCarriesNoDataAndIsRefusedWhereItDoes()
    {
        string clientKey = WriteKeyFile("client.key");
        File.WriteAllText(Path.Combine(Dir, "payload.txt"), "payload\n");
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        ToolProcess receiver = Start("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox", "--authorized-keys", "-");
        await receiver.WriteAsync($"{clientKey} from stdin\n");
        receiver.CloseStdin();
        await WaitUntilListeningAsync(receiver);

        ToolProcess sender = Start("send", "payload.txt", $"127.0.0.1:{ServerPort(receiver)}", "--key", "-", "--trust", ServerKey(receiver));
        await sender.WriteAsync(File.ReadAllText(Path.Combine(Dir, "client.key")));
        sender.CloseStdin();

        AssertSucceeds(await sender.WaitForExitAsync());
        AssertSucceeds(await receiver.WaitForExitAsync());
        Assert.Equal("payload\n", File.ReadAllText(Path.Combine(Dir, "inbox", "payload.txt")));

        ToolResult[] refused = await Task.WhenAll(
            RunAsync("connect", "127.0.0.1:7000", "--key", "-", "--trust", clientKey),
            RunAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--authorized-keys", "-"),
            RunAsync("connect", "127.0.0.1:7000", "--known-hosts", "-"));
        AssertFails(refused[0], 2, "stdin carries the connection's data");
        AssertFails(refused[1], 2, "stdin carries the connection's data");
        AssertFails(refused[2], 2, "--known-hosts cannot be '-'");
        Assert.False(File.Exists(Path.Combine(Dir, "-")));
    }

    [Fact]
    public async Task AnArgumentThatStartsWithAnAtSignIsTakenAsItIsNotAsAResponseFile()
    {
        // System.CommandLine reads '@NAME' as a response file by default: its contents replaced the
        // argument. `for f in *; do ossuary send "$f" HOST:P; done` over a folder that others can write
        // to then sent what a file named 'notes' chose, a secret key say, when it met one named '@notes'.
        WriteKeyFile("secret.key");
        File.WriteAllText(Path.Combine(Dir, "@notes"), "the notes\n");
        File.WriteAllText(Path.Combine(Dir, "notes"), "secret.key\n");
        Directory.CreateDirectory(Path.Combine(Dir, "inbox"));
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1", "-o", "inbox");

        ToolResult sent = await RunAsync("send", "@notes", $"127.0.0.1:{ServerPort(receiver)}", "--trust", ServerKey(receiver));
        ToolResult received = await receiver.WaitForExitAsync();

        AssertSucceeds(sent);
        AssertSucceeds(received);
        Assert.Equal(["@notes"], Directory.GetFiles(Path.Combine(Dir, "inbox")).Select(Path.GetFileName));
        Assert.Equal("the notes\n", File.ReadAllText(Path.Combine(Dir, "inbox", "@notes")));
    }

    [Fact]
    public async Task AKeyFileWithAByteOrderMarkIsAccepted()
    {
        string publicKey = WriteKeyFile("plain.key");
        byte[] content = File.ReadAllBytes(Path.Combine(Dir, "plain.key"));
        File.WriteAllBytes(Path.Combine(Dir, "bom.key"), [0xEF, 0xBB, 0xBF, .. content[..64], (byte)'\r', (byte)'\n']);
        SetMode("bom.key", OwnerOnly);

        ToolResult printed = await RunAsync("pubkey", "bom.key");

        AssertSucceeds(printed);
        Assert.Equal(publicKey + "\n", printed.Stdout);
    }

    [Fact]
    public async Task AnEndlessJunkKeyFileIsRejectedWithoutReadingItWhole()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // no FIFOs
        }

        // A FIFO fed without end: reading it whole would never finish.
        string fifo = Path.Combine(Dir, "junk.key");
        using (var mkfifo = Process.Start("mkfifo", ["-m", "600", fifo]))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        ToolProcess pubkey = Start("pubkey", "junk.key");
        using var stop = new CancellationTokenSource();
        Task feeder = Task.Run(async () =>
        {
            byte[] junk = Encoding.ASCII.GetBytes(new string('a', 4096));
            try
            {
                await using var writer = new FileStream(fifo, FileMode.Open, FileAccess.Write);
                while (!stop.IsCancellationRequested)
                {
                    await writer.WriteAsync(junk, stop.Token);
                }
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException)
            {
                // the reader closed the FIFO: it stopped reading
            }
        });

        ToolResult result = await pubkey.WaitForExitAsync();
        await stop.CancelAsync();
        await feeder.WaitAsync(ToolProcess.HardTimeout);

        AssertFails(result, 2, "key file 'junk.key' is malformed");
    }

    [Fact]
    public async Task TheDefaultKnownHostsFolderIsPrivateAndBindTakesAHostName()
    {
        ToolProcess server = Start("listen", "--port", "0", "--bind", "localhost", "--echo", "--once");
        await WaitUntilListeningAsync(server);
        int port = ServerPort(server);

        ToolResult trusted = await EchoAsync("hi\n", "connect", $"localhost:{port}", "--tofu", "--wait", "0.2");

        AssertSucceeds(trusted);
        Assert.Equal("hi\n", trusted.Stdout);
        Assert.True(File.Exists(Path.Combine(Dir, ".ossuary", "known_hosts")));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.Combine(Dir, ".ossuary")));
        }
    }

    [Fact]
    public async Task PortZeroListensOnAFreePortAndSaysWhichOne()
    {
        // What scripts (and these tests) do instead of guessing a free port that someone may take first.
        ToolProcess listener = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--echo", "--once");
        ToolProcess receiver = await StartServerAsync("receive", "--port", "0", "--bind", "127.0.0.1");
        int listenPort = ServerPort(listener);

        Assert.NotEqual(0, listenPort);
        Assert.NotEqual(0, ServerPort(receiver));
        Assert.NotEqual(listenPort, ServerPort(receiver));
        ToolResult echoed = await EchoAsync("hi\n", "connect", $"127.0.0.1:{listenPort}", "--trust", ServerKey(listener), "--wait", "0.2");
        AssertSucceeds(echoed);
        Assert.Equal("hi\n", echoed.Stdout);
        AssertSucceeds(await listener.WaitForExitAsync());
    }

    [Fact]
    public async Task AKeylessServerWarnsThatTofuClientsWillSeeAChangedKey()
    {
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1");

        Assert.Contains("no --key given; using a temporary identity", server.Stderr, StringComparison.Ordinal);
        Assert.Contains("will see a changed key", server.Stderr, StringComparison.Ordinal);
        Assert.Contains("ossuary keygen -o server.key", server.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KnownHostsRemoveKeepsAHostAddedWhileItRewritesTheFile()
    {
        // A `connect --tofu` trusting a new host (the library's OssuaryKnownHosts.Add, which holds the file
        // exclusively) while a removal is between reading the file and putting the new one in place:
        // the removal read it unlocked and renamed a new file over it, and the host added in between was
        // lost. strace (Debian's, installed if missing) holds back every rename the tool makes by 2 s.
        const string Old = "1111111111111111111111111111111111111111111111111111111111111111";
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        string path = Path.Combine(Dir, "known_hosts");
        File.WriteAllText(path, $"old.example:7000 {Old}\nkept.example:7000 {Old}\n");
        using var added = OssuaryIdentity.Generate();

        using ToolProcess remove = ToolProcess.StartUnderStrace(
            strace,
            ["-f", "-o", Path.Combine(Dir, "strace.log"), "-e", "trace=rename,renameat,renameat2", "-e", "inject=rename,renameat,renameat2:delay_enter=2000000"],
            Dir, "known-hosts", "remove", "old.example:7000", "--known-hosts", "known_hosts");
        Stopwatch started = Stopwatch.StartNew();
        while (Directory.GetFiles(Dir, "*.tmp").Length == 0)
        {
            Assert.False(remove.HasExited, $"the tool wrote no new file:\n{remove.Stderr}");
            Assert.True(started.Elapsed < ToolProcess.HardTimeout, "the tool wrote no new file in time");
            await Task.Delay(10);
        }

        await Task.Run(() => OssuaryKnownHosts.Load(path).Add("new.example", 7000, added.PublicKey)).Within(TimeSpan.FromSeconds(20));

        AssertSucceeds(await remove.WaitForExitAsync());
        Assert.Equal($"kept.example:7000 {Old}\nnew.example:7000 {added.PublicKey}\n", File.ReadAllText(path));
        Assert.Equal($"old.example:7000 {Old}\nkept.example:7000 {Old}\n", File.ReadAllText(path + ".old"));
    }

    [Fact]
    public async Task KnownHostsRemoveAndSetMaintainTheFileAndAChangedKeyNamesItsLine()
    {
        const string Old = "1111111111111111111111111111111111111111111111111111111111111111";
        string serverKey = WriteKeyFile("server.key");
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--key", "server.key", "--echo");
        int port = ServerPort(server);
        string hosts = $"# hosts\nexample.org:7000 {Old}\n127.0.0.1:{port} {Old} the old key\n";
        File.WriteAllText(Path.Combine(Dir, "known_hosts"), hosts);

        ToolResult changed = await RunAsync("connect", $"127.0.0.1:{port}", "--known-hosts", "known_hosts");
        AssertFails(changed, 3, "REMOTE HOST IDENTIFICATION HAS CHANGED", "known_hosts:3", $"ossuary known-hosts remove 127.0.0.1:{port}");

        ToolResult removed = await RunAsync("known-hosts", "remove", $"127.0.0.1:{port}", "--known-hosts", "known_hosts");
        AssertSucceeds(removed);
        Assert.Equal($"# hosts\nexample.org:7000 {Old}\n", File.ReadAllText(Path.Combine(Dir, "known_hosts")));
        Assert.Equal(hosts, File.ReadAllText(Path.Combine(Dir, "known_hosts.old")));
        AssertFails(await RunAsync("known-hosts", "remove", $"127.0.0.1:{port}", "--known-hosts", "known_hosts"), 1, "holds no key for");

        AssertSucceeds(await RunAsync("known-hosts", "set", $"127.0.0.1:{port}", serverKey, "--known-hosts", "known_hosts"));
        ToolResult reconnected = await EchoAsync("back\n", "connect", $"127.0.0.1:{port}", "--known-hosts", "known_hosts", "--wait", "0.2");
        AssertSucceeds(reconnected);
        Assert.Equal("back\n", reconnected.Stdout);

        // set replaces what was there, host-only lines for the host included, and says what it replaced.
        File.AppendAllText(Path.Combine(Dir, "known_hosts"), $"example.org {Old} any port\n");
        ToolResult replaced = await RunAsync("known-hosts", "set", "example.org:7000", serverKey, "--known-hosts", "known_hosts");
        AssertSucceeds(replaced);
        Assert.Contains("replaced 2 line(s) for it (host-only lines for example.org included); the old file is known_hosts.old", replaced.Stderr, StringComparison.Ordinal);
        string[] lines = File.ReadAllLines(Path.Combine(Dir, "known_hosts"));
        Assert.DoesNotContain(lines, line => line.Contains(Old, StringComparison.Ordinal));
        Assert.Single(lines, line => line.StartsWith("example.org:7000 " + serverKey, StringComparison.Ordinal));
        Assert.False(server.HasExited);
    }

    [Fact]
    public async Task KnownHostsSetThatCannotWriteTheLineLeavesTheFileAsItWas()
    {
        // The disk fills up in the middle of the appended line: its first bytes fit in the file's last
        // page, the rest do not. The cut line used to stay, and the file was malformed for every later connect.
        const string Old = "1111111111111111111111111111111111111111111111111111111111111111";
        const string New = "2222222222222222222222222222222222222222222222222222222222222222";
        using var disk = FullDisk.Mount();
        string path = Path.Combine(disk.Path, "known_hosts");
        string held = $"# {new string('x', 3900)}\nexample.org:7000 {Old}\n";
        held += new string('#', 4080 - held.Length - 1) + "\n";
        File.WriteAllText(path, held);
        disk.Fill();

        ToolResult failed = await RunAsync("known-hosts", "set", "other.example:7000", New, "--known-hosts", path);

        AssertFails(failed, 1, "No space left on device", "the file is unchanged");
        Assert.Equal(held, File.ReadAllText(path));
        disk.Free();
        AssertSucceeds(await RunAsync("known-hosts", "set", "other.example:7000", New, "--known-hosts", path));
        Assert.StartsWith(held + "other.example:7000 " + New, File.ReadAllText(path), StringComparison.Ordinal);
    }

    [Fact]
    public async Task KnownHostsSetThatCannotWriteANewFileLeavesNoFile()
    {
        // The file did not exist and the disk is full: the tool said "the file is unchanged" and
        // left an empty file it had created.
        const string New = "2222222222222222222222222222222222222222222222222222222222222222";
        using var disk = FullDisk.Mount();
        string path = Path.Combine(disk.Path, "known_hosts");
        disk.Fill();

        ToolResult failed = await RunAsync("known-hosts", "set", "other.example:7000", New, "--known-hosts", path);

        AssertFails(failed, 1, "No space left on device", "the file is unchanged");
        Assert.False(File.Exists(path), "an empty known-hosts file was left behind");
    }

    [Fact]
    public async Task KnownHostsRemoveThatCannotWriteTheBackupIsAFailureThatLeavesTheFileAsItWas()
    {
        // FILE.old is written first and the disk has no room for it: a full disk is no bad input
        // (exit 2 was the tool's code for any IOException), and the message named a temporary file.
        const string Old = "1111111111111111111111111111111111111111111111111111111111111111";
        using var disk = FullDisk.Mount();
        string path = Path.Combine(disk.Path, "known_hosts");
        string held = $"example.org:7000 {Old}\nother.example:7000 {Old}\n";
        File.WriteAllText(path, held);
        disk.Fill();

        ToolResult failed = await RunAsync("known-hosts", "remove", "example.org:7000", "--known-hosts", path);

        AssertFails(failed, 1, $"cannot write the backup '{path}.old'", "No space left on device", "the file is unchanged");
        Assert.Equal(held, File.ReadAllText(path));
        Assert.Equal(["known_hosts"], Directory.GetFiles(disk.Path).Select(Path.GetFileName).Where(name => name != ".filler"));
    }

    [Fact]
    public async Task KnownHostsSetReplacesTheKeyWhileAClientRecordsOneOnFirstUse()
    {
        // What a client trusting the server on first use (connect --tofu) records whenever the file holds no key for it.
        const string Recorded = "2222222222222222222222222222222222222222222222222222222222222222";
        string path = Path.Combine(Dir, "known_hosts");
        string wanted = WriteKeyFile("new.key");

        // A few rounds: the client gets in between only when it finds the file free at the right moment.
        for (int round = 0; round < 15; round++)
        {
            File.WriteAllText(path, $"example.org:7000 {Recorded}\n");
            using var stop = new CancellationTokenSource();
            OssuaryKnownHosts firstUse = OssuaryKnownHosts.Load(path);
            Task client = Task.Run(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    Thread.SpinWait(2_000); // leaves the file unlocked now and then, as clients connecting at times do
                    try
                    {
                        // Only once the file is free: Add would wait for it in sleeps of up to 50 ms, and
                        // clients connecting at any moment do not all sleep through the same few milliseconds.
                        new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None).Dispose();
                    }
                    catch (IOException)
                    {
                        continue;
                    }

                    try
                    {
                        firstUse.Add("example.org", 7000, OssuaryPublicKey.Parse(Recorded));
                    }
                    catch (InvalidOperationException)
                    {
                        // The file holds another key for the host: a client refuses, records nothing.
                    }
                }
            });

            ToolResult set;
            try
            {
                set = await RunAsync("known-hosts", "set", "example.org:7000", wanted, "--known-hosts", "known_hosts");
            }
            finally
            {
                await stop.CancelAsync();
                await client;
            }

            // set replaces whatever the file held: the file is never without a key for the host, so no client records one in between.
            AssertSucceeds(set);
            OssuaryKnownHosts after = OssuaryKnownHosts.Load(path);
            Assert.Equal(KnownHostStatus.Trusted, after.Check("example.org", 7000, OssuaryPublicKey.Parse(wanted)));
            Assert.Equal(KnownHostStatus.Changed, after.Check("example.org", 7000, OssuaryPublicKey.Parse(Recorded)));
        }
    }

    [Fact]
    public async Task APeerThatIsNotOssuaryIsNamedByWhatItSent()
    {
        using var http = new FakePeer(async socket =>
        {
            byte[] buffer = new byte[4096];
            _ = await socket.ReceiveAsync(buffer); // the client's hello, taken for a request
            await socket.SendAsync("HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n"u8.ToArray());
        });
        using var ssh = new FakePeer(async socket => await socket.SendAsync("SSH-2.0-OpenSSH_9.6\r\n"u8.ToArray()));

        ToolResult[] results = await Task.WhenAll(
            RunAsync("connect", $"127.0.0.1:{http.Port}", "--trust", WriteKeyFile("any.key")),
            RunAsync("connect", $"127.0.0.1:{ssh.Port}", "--known-hosts", "known_hosts"));

        AssertFails(results[0], 1, $"127.0.0.1:{http.Port} does not speak Ossuary; it sent 'HTTP/1.0 400 Bad Request'");
        AssertFails(results[1], 1, $"127.0.0.1:{ssh.Port} does not speak Ossuary; it sent 'SSH-2.0-OpenSSH_9.6'");
    }

    [Fact]
    public async Task AServerThatClosesBeforeAnsweringIsNamedAsNotOssuaryOrAtItsLimitOfHandshakes()
    {
        // A UseOssuary server past MaxPendingHandshakes closes new connections unheard; the tool called such a
        // server one that "does not seem to speak Ossuary", which sends an operator looking in the wrong place.
        using var full = new FakePeer(async socket =>
        {
            byte[] buffer = new byte[4096];
            _ = await socket.ReceiveAsync(buffer); // the client's hello, read so that the close is an orderly one
        });

        ToolResult result = await RunAsync("connect", $"127.0.0.1:{full.Port}", "--trust", WriteKeyFile("any.key"));

        AssertFails(
            result,
            1,
            $"127.0.0.1:{full.Port} closed the connection without answering the Ossuary handshake; it does not seem to speak Ossuary, or it is at its limit of handshakes in progress");
    }

    [Fact]
    public async Task AListenServerNamesAClientThatIsNotOssuary()
    {
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--once");
        int port = ServerPort(server);
        using (var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await client.ConnectAsync(IPAddress.Loopback, port);
            await client.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
            ToolResult result = await server.WaitForExitAsync();

            AssertFails(result, 1, "does not speak Ossuary; it sent 'GET / HTTP/1.1'");
        }
    }

    [Fact]
    public async Task ASilentPeerFailsAtTheHandshakeTimeoutOrAtTimeout()
    {
        using var silent = new FakePeer(async socket => await Task.Delay(TimeSpan.FromSeconds(20)));

        ToolResult[] results = await Task.WhenAll(
            RunAsync("connect", $"127.0.0.1:{silent.Port}", "--trust", WriteKeyFile("any.key")),
            RunAsync("connect", $"127.0.0.1:{silent.Port}", "--trust", WriteKeyFile("other.key"), "-w", "0.5"),
            RunAsync("send", "any.key", $"127.0.0.1:{silent.Port}", "--trust", WriteKeyFile("third.key"), "--timeout", "0.5"));

        AssertFails(results[0], 1, $"127.0.0.1:{silent.Port} sent nothing within the handshake timeout", "it does not speak Ossuary");
        AssertFails(results[1], 4, $"127.0.0.1:{silent.Port} accepted the connection but did not complete the Ossuary handshake within 0.5 s (--timeout)");
        AssertFails(results[2], 4, "within 0.5 s (--timeout)");
    }

    /// <summary>A TCP server on 127.0.0.1 that runs <paramref name="serve"/> on each connection, then closes it.</summary>
    private sealed class FakePeer : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly CancellationTokenSource _stop = new();

        public FakePeer(Func<Socket, Task> serve)
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen();
            Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
            _ = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    Socket socket;
                    try
                    {
                        socket = await _listener.AcceptAsync(_stop.Token);
                    }
                    catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
                    {
                        return;
                    }

                    _ = Task.Run(async () =>
                    {
                        using (socket)
                        {
                            try
                            {
                                await serve(socket);
                            }
                            catch (SocketException)
                            {
                            }
                        }
                    });
                }
            });
        }

        public int Port { get; }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Dispose();
            _stop.Dispose();
        }
    }
}
