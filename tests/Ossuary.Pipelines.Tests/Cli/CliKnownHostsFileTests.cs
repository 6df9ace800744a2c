using System.Reflection;
using System.Text;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary><c>ossuary known-hosts remove</c> and <c>set</c> on files as editors and umasks leave them.</summary>
[Collection(CliCollection.Name)]
public sealed class CliKnownHostsFileTests : CliTestBase
{
    private const string Old = "1111111111111111111111111111111111111111111111111111111111111111";
    private const string New = "2222222222222222222222222222222222222222222222222222222222222222";

    [Fact]
    public async Task RemoveAndSetFindTheFirstLineOfAFileThatStartsWithAByteOrderMark()
    {
        // Notepad's UTF-8 starts the file with EF BB BF. The library reads past it and trusts the first
        // line; the tool matched lines on the raw text, where the mark is part of the host, and kept the
        // line: remove said the file held no key, and set said it now trusted the new key while the old
        // one, the one being replaced, stayed trusted beside it.
        string path = Path.Combine(Dir, "known_hosts");
        byte[] held = [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes($"example.org:7000 {Old}\r\nother.example:7000 {Old}\r\n")];
        File.WriteAllBytes(path, held);
        Assert.Equal(KnownHostStatus.Trusted, OssuaryKnownHosts.Load(path).Check("example.org", 7000, OssuaryPublicKey.Parse(Old)));

        AssertSucceeds(await RunAsync("known-hosts", "set", "example.org:7000", New, "--known-hosts", "known_hosts"));

        OssuaryKnownHosts after = OssuaryKnownHosts.Load(path);
        Assert.Equal(KnownHostStatus.Changed, after.Check("example.org", 7000, OssuaryPublicKey.Parse(Old)));
        Assert.Equal(KnownHostStatus.Trusted, after.Check("example.org", 7000, OssuaryPublicKey.Parse(New)));
        Assert.Equal(KnownHostStatus.Trusted, after.Check("other.example", 7000, OssuaryPublicKey.Parse(Old)));
        Assert.Equal(held, File.ReadAllBytes(path + ".old"));

        File.WriteAllBytes(path, held);
        ToolResult removed = await RunAsync("known-hosts", "remove", "example.org:7000", "--known-hosts", "known_hosts");

        AssertSucceeds(removed);
        Assert.Contains("removed 1 line(s)", removed.Stderr, StringComparison.Ordinal);
        Assert.Equal(KnownHostStatus.Unknown, OssuaryKnownHosts.Load(path).Check("example.org", 7000, OssuaryPublicKey.Parse(Old)));
        Assert.Equal($"other.example:7000 {Old}\r\n", File.ReadAllText(path));
    }

    [Fact]
    public async Task SetAndTofuOnABinaryFileWithoutALineBreakKeepItsBytes()
    {
        // A file named by mistake (a raw 32-byte key) with no CR or LF byte is one last line, unended, that
        // does not parse. It was taken for what a crash leaves of a line being recorded, and dropped: set
        // replaced the file's bytes with its line (exit 0, no backup), and so did connect --tofu.
        byte[] binary = [0x9C, 0x01, 0x7F, 0x45, 0xB3, 0x00, 0x21, 0xE8, 0x5A, 0x1B, 0xC4, 0x66, 0x02, 0xF0, 0x3D, 0x88,
            0x11, 0xA7, 0x20, 0x09, 0xD5, 0x4E, 0x8B, 0x13, 0x6C, 0xFE, 0x07, 0x92, 0x30, 0xBB, 0x1F, 0x44];
        string path = Path.Combine(Dir, "raw.key");
        File.WriteAllBytes(path, binary);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        ToolResult connected = await RunAsync("connect", "127.0.0.1:9", "--tofu", "--known-hosts", "raw.key");
        AssertFails(connected, 2, "known-hosts file is malformed", "raw.key:1");
        Assert.Equal(binary, File.ReadAllBytes(path));

        await RunAsync("known-hosts", "set", "example.org:7000", New, "--known-hosts", "raw.key");
        Assert.Equal(binary, File.ReadAllBytes(path)[..binary.Length]);
    }

    [Theory]
    [InlineData("example.org :7000")]
    [InlineData(" example.org:7000")]
    [InlineData("[ ::1 ]:7000")]
    public async Task SetWritesALineThatReadsBackWhenTheHostHasSpacesAroundIt(string server)
    {
        // A quoted argument with a space around the host: set wrote the host as given, "example.org :7000 KEY",
        // which reads as the host-only entry "example.org" with ":7000" for its key: set said it now trusted
        // the key, and the file was malformed, so every connect through it failed from then on.
        string path = Path.Combine(Dir, "known_hosts");
        File.WriteAllText(path, $"other.example:7000 {Old}\n");

        AssertSucceeds(await RunAsync("known-hosts", "set", server, New, "--known-hosts", "known_hosts"));

        OssuaryKnownHosts after = OssuaryKnownHosts.Load(path);
        string host = server.Contains("::1", StringComparison.Ordinal) ? "::1" : "example.org";
        Assert.Equal(KnownHostStatus.Trusted, after.Check(host, 7000, OssuaryPublicKey.Parse(New)));
        Assert.Equal(KnownHostStatus.Trusted, after.Check("other.example", 7000, OssuaryPublicKey.Parse(Old)));
    }

    [Theory]
    [InlineData("\r", "\r")] // old Mac line ends
    [InlineData("\r", "\n")] // a lone CR in a file of LF lines
    public async Task RemoveAndSetTakeOnlyTheServersLineWhenLinesEndWithACarriageReturn(string first, string second)
    {
        // The library ends a line at CR, LF or CR LF; the tool split the file at LF only. A file with CR
        // line ends was one line to it, which spoke of the server (the library's parser found it among
        // the entries), so remove and set took every line of the file away: other servers' keys lost
        // (kept only in FILE.old), and the next connect to them found them unknown.
        string path = Path.Combine(Dir, "known_hosts");
        string other = $"other.example:7000 {Old}{second}";
        File.WriteAllText(path, $"example.org:7000 {Old}{first}{other}");

        ToolResult removed = await RunAsync("known-hosts", "remove", "example.org:7000", "--known-hosts", "known_hosts");

        AssertSucceeds(removed);
        Assert.Contains("removed 1 line(s)", removed.Stderr, StringComparison.Ordinal);
        Assert.Equal(other, File.ReadAllText(path));

        File.WriteAllText(path, $"example.org:7000 {Old}{first}{other}");
        AssertSucceeds(await RunAsync("known-hosts", "set", "example.org:7000", New, "--known-hosts", "known_hosts"));

        OssuaryKnownHosts after = OssuaryKnownHosts.Load(path);
        Assert.Equal(KnownHostStatus.Trusted, after.Check("example.org", 7000, OssuaryPublicKey.Parse(New)));
        Assert.Equal(KnownHostStatus.Trusted, after.Check("other.example", 7000, OssuaryPublicKey.Parse(Old)));
        Assert.Equal(2, after.Count);
    }

    [Fact]
    public async Task SetDropsALastLineACrashCutShort()
    {
        // connect --tofu appends its line in place, and a crash in the middle of it leaves the line's start
        // with no line break, which the library leaves out. set kept it and wrote its own line after it:
        // the cut line was then in the middle of the file, and every later connect called it malformed.
        string path = Path.Combine(Dir, "known_hosts");
        string kept = $"example.org:7000 {Old}\nother.example:7000 {Old}\n";
        File.WriteAllText(path, $"{kept}new.exam");

        AssertSucceeds(await RunAsync("known-hosts", "set", "new.example:7000", New, "--known-hosts", "known_hosts"));

        OssuaryKnownHosts after = OssuaryKnownHosts.Load(path);
        Assert.Equal(KnownHostStatus.Trusted, after.Check("example.org", 7000, OssuaryPublicKey.Parse(Old)));
        Assert.Equal(KnownHostStatus.Trusted, after.Check("new.example", 7000, OssuaryPublicKey.Parse(New)));
        Assert.Equal(3, after.Count);
        Assert.StartsWith(kept + "new.example:7000 ", File.ReadAllText(path), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AConnectWhoseKnownHostsFileEndsWithACutLineSaysSo()
    {
        // The library leaves the cut line out (it trusts nobody); the user should still learn that their
        // file was damaged, and that a key they meant to record may not be there.
        string path = Path.Combine(Dir, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {Old}\nnew.exam");

        ToolResult result = await RunAsync("connect", "127.0.0.1:1", "--known-hosts", "known_hosts");

        Assert.Contains("known_hosts:2", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("cut short", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SetAndRemoveClearDraftsACrashLeftBesideTheFile()
    {
        // set and remove write the new file (and FILE.old) as a draft beside it and rename it into place;
        // killed in between, the draft stayed, and every crash added one, forever. They hold the file
        // while they write their drafts, so once they hold it a draft of that name is a dead writer's.
        string path = Path.Combine(Dir, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {Old}\n");
        string[] stale = [path + ".0123abcd.tmp", path + ".old.89abcdef.tmp"];
        foreach (string draft in stale)
        {
            File.WriteAllText(draft, $"example.org:7000 {Old}\n");
        }

        string notOurs = path + ".notes.tmp";
        File.WriteAllText(notOurs, "mine\n");

        AssertSucceeds(await RunAsync("known-hosts", "set", "new.example:7000", New, "--known-hosts", "known_hosts"));

        Assert.All(stale, draft => Assert.False(File.Exists(draft), draft));
        Assert.True(File.Exists(notOurs));
        Assert.Equal(KnownHostStatus.Trusted, OssuaryKnownHosts.Load(path).Check("new.example", 7000, OssuaryPublicKey.Parse(New)));

        File.WriteAllText(stale[0], "");
        AssertSucceeds(await RunAsync("known-hosts", "remove", "new.example:7000", "--known-hosts", "known_hosts"));
        Assert.False(File.Exists(stale[0]));
    }

    [Theory]
    [InlineData("listen", "--authorized-keys")]
    [InlineData("connect", "--known-hosts")]
    public async Task ANamedPipeGivenAsATrustFileIsRefusedNotWaitedOn(string command, string option)
    {
        // Opening a FIFO for reading waits until something opens it for writing: a trust file that is one
        // (a mkfifo, a `<(...)` taken for a file) hung the tool at start-up without a word. The library
        // refuses it as no regular file, naming it; '-' remains for keys on stdin.
        string fifo = Path.Combine(Dir, "trust");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", ["-m", "644", fifo]))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        WriteKeyFile("own.key");
        ToolResult result = command == "listen"
            ? await RunAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--key", "own.key", option, "trust")
            : await RunAsync("connect", "127.0.0.1:1", option, "trust");

        AssertFails(result, 2, "trust", "named pipe", "not a regular file");
    }

    [Fact]
    public async Task RemoveKeepsTheBytesOfTheLinesItKeeps()
    {
        // The file was decoded whole and encoded again: a comment in another encoding (Latin-1, say)
        // came back as U+FFFD on every line the removal kept.
        string path = Path.Combine(Dir, "known_hosts");
        byte[] kept = [.. Encoding.ASCII.GetBytes($"other.example:7000 {Old} caf"), 0xE9, (byte)'\n'];
        File.WriteAllBytes(path, [.. Encoding.ASCII.GetBytes($"example.org:7000 {Old}\n"), .. kept]);

        AssertSucceeds(await RunAsync("known-hosts", "remove", "example.org:7000", "--known-hosts", "known_hosts"));

        Assert.Equal(kept, File.ReadAllBytes(path));
    }

    [Fact]
    public async Task SetAndRemoveRefuseAUtf16FileAndLeaveItAlone()
    {
        // Windows PowerShell 5's `>` writes UTF-16, which the library reads. The tool split the file on
        // bytes as UTF-8: remove found no line for the server, and set appended a UTF-8 line, leaving a
        // file every later connect called malformed, after saying it now trusted the key.
        string path = Path.Combine(Dir, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {Old}\r\n", Encoding.Unicode);
        byte[] held = File.ReadAllBytes(path);

        ToolResult set = await RunAsync("known-hosts", "set", "other.example:7000", New, "--known-hosts", "known_hosts");
        ToolResult removed = await RunAsync("known-hosts", "remove", "example.org:7000", "--known-hosts", "known_hosts");

        AssertFails(set, 2, "known_hosts", "UTF-16", "save it as UTF-8");
        AssertFails(removed, 2, "known_hosts", "UTF-16", "save it as UTF-8");
        Assert.Equal(held, File.ReadAllBytes(path));
        Assert.False(File.Exists(path + ".old"));
    }

    [Fact]
    public async Task SetUnderAPermissiveUmaskMakesAFileAndFoldersThatConnectsAccept()
    {
        // umask 002 (a user's own group, common on Debian and in containers): the tool created the file
        // and the folders above it as the umask left them, group-writable, where the library makes them
        // 0644 and 0700. Every later connect then refused the file the tool had just written.
        ToolResult set = await StartWithUmask("002", "known-hosts", "set", "example.org:7000", New, "--known-hosts", "hosts/per-site/known_hosts").WaitForExitAsync();

        AssertSucceeds(set);
        string path = Path.Combine(Dir, "hosts", "per-site", "known_hosts");
        Assert.Equal(KnownHostStatus.Trusted, OssuaryKnownHosts.Load(path).Check("example.org", 7000, OssuaryPublicKey.Parse(New)));
        const UnixFileMode UserOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        AssertMode(Path.Combine("hosts", "per-site", "known_hosts"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        AssertMode(Path.Combine("hosts", "per-site"), UserOnly);
        AssertMode("hosts", UserOnly);
    }

    [Fact]
    public async Task ATofuClientWhoseFileIsDeletedBeforeItsLockTakesHoldRecordsTheKeyInTheFileOfThatName()
    {
        // `known-hosts set` on a file that did not exist and could not be written (a full disk) deletes the
        // file it created, still holding it. A `connect --tofu` that had opened that file got its lock once
        // the set let go, on a file no folder named any more: it appended the key there, said it had recorded
        // it, and the key was lost. strace holds back the client's flock by 3 s (it opens, then locks), and
        // the test deletes the file meanwhile, as the set does between the client's open and its lock.
        string path = Path.Combine(Dir, "known_hosts");
        (string serverKey, int port, ToolResult connected) = await TofuWithItsLockHeldBackAsync(() =>
        {
            File.Delete(path);
            return Task.CompletedTask;
        });
        Assert.True(File.Exists(path), $"the client said it recorded the key, in no file:\n{connected}");
        Assert.Equal(KnownHostStatus.Trusted, OssuaryKnownHosts.Load(path).Check("127.0.0.1", port, OssuaryPublicKey.Parse(serverKey)));
    }

    [Theory]
    [InlineData("ftruncate")]
    [InlineData("pwrite64")]
    [InlineData("rename")]
    public async Task RemoveKilledAtAnyCallOnTheFileLeavesTheOldFileOrTheNew(string call)
    {
        // remove rewrote the file in place: the lines kept over the old ones, then the file cut to their
        // length. Killed in between (kill -9, a power cut), the file held the new text followed by the old
        // file's last bytes: here, since the kept line ends with a comment that reads as an entry of its
        // own, a trust entry for evil.example:700 that nobody wrote. strace kills the tool as it enters
        // the first call of that kind on the file itself (-P: the file, not a draft beside it).
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        string path = Path.Combine(Dir, "known_hosts");
        string removed = $"old.example:7000 {Old}\n";
        string tail = $"evil.example:700 {New}\n";
        Assert.Equal(removed.Length, tail.Length);
        string kept = $"kept.example:7000 {Old} {tail}";
        File.WriteAllText(path, removed + kept);

        using ToolProcess remove = ToolProcess.StartUnderStrace(
            strace, ["-f", "-qq", "-o", Path.Combine(Dir, "strace.log"), "-P", path, "-e", $"trace={call}", "-e", $"inject={call}:signal=SIGKILL"],
            Dir, "known-hosts", "remove", "old.example:7000", "--known-hosts", "known_hosts");
        ToolResult result = await remove.WaitForExitAsync();

        string after = File.ReadAllText(path);
        Assert.True(after == removed + kept || after == kept, $"the file is neither the old nor the new one:\n{after}\n{result}");
        Assert.NotEqual(KnownHostStatus.Trusted, OssuaryKnownHosts.Load(path).Check("evil.example", 700, OssuaryPublicKey.Parse(New)));
    }

    [Fact]
    public async Task ATofuClientThatOpenedTheFileBeforeARemoveRenamedANewOneOverItRecordsTheKeyInTheNewOne()
    {
        // remove writes the new file beside the old and renames it over the old one, holding the old one's
        // lock until then. A `connect --tofu` that had opened the old file takes that lock once the remove
        // lets go: it must see that the name now leads to another file and append there, or the key it
        // reports as recorded is in a file no folder holds. strace holds back the client's flock by 3 s
        // (it opens, then locks); the remove runs in that time.
        string path = Path.Combine(Dir, "known_hosts");
        File.WriteAllText(path, $"old.example:7000 {Old}\nkept.example:7000 {Old}\n");
        (string serverKey, int port, _) = await TofuWithItsLockHeldBackAsync(async () =>
            AssertSucceeds(await RunAsync("known-hosts", "remove", "old.example:7000", "--known-hosts", "known_hosts")));
        OssuaryKnownHosts after = OssuaryKnownHosts.Load(path);
        Assert.Equal(KnownHostStatus.Trusted, after.Check("127.0.0.1", port, OssuaryPublicKey.Parse(serverKey)));
        Assert.Equal(KnownHostStatus.Trusted, after.Check("kept.example", 7000, OssuaryPublicKey.Parse(Old)));
        Assert.Equal(KnownHostStatus.Unknown, after.Check("old.example", 7000, OssuaryPublicKey.Parse(Old)));
    }

    [Fact]
    public async Task SetCreatesItsDraftOfTheNewFileOwnerOnlyWhateverTheUmask()
    {
        // The draft was created as the umask left it and given the held file's mode only afterwards: under
        // umask 000 it was 0666 for a moment, and whoever opened it for writing then (inotify tells them
        // when, in a folder they can read, such as /tmp) kept a descriptor that wrote into the known-hosts
        // file once it had the name. strace shows the mode the draft is created with.
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        string path = Path.Combine(Dir, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {Old}\n");
        string log = Path.Combine(Dir, "strace.log");

        using ToolProcess set = ToolProcess.StartUnderStrace(
            strace, ["-f", "-qq", "-o", log, "-e", "trace=openat"],
            Dir, "known-hosts", "set", "other.example:7000", New, "--known-hosts", "known_hosts");
        AssertSucceeds(await set.WaitForExitAsync());

        string created = Assert.Single(File.ReadAllLines(log), line => line.Contains($"\"{path}.", StringComparison.Ordinal) && line.Contains(".tmp\"", StringComparison.Ordinal) && line.Contains("O_CREAT", StringComparison.Ordinal));
        string mode = created[(created.LastIndexOf(", ", StringComparison.Ordinal) + 2)..created.LastIndexOf(')')];
        Assert.True(mode == "0600", $"the draft was created with mode {mode}: {created}");
        Assert.Equal(KnownHostStatus.Trusted, OssuaryKnownHosts.Load(path).Check("other.example", 7000, OssuaryPublicKey.Parse(New)));
    }

    [Fact]
    public async Task SetThroughALinkReplacesTheLinkedFileWithItsModeAndKeepsTheLink()
    {
        // set and remove rename a new file over the old one: over a link (a dotfiles checkout's
        // known_hosts, say), the link itself would have become a plain file, and the checkout's file
        // kept the old key; the new file would have had the umask's mode, not the file's.
        string real = Path.Combine(Dir, "dotfiles", "known_hosts");
        Directory.CreateDirectory(Path.GetDirectoryName(real)!);
        File.WriteAllText(real, $"example.org:7000 {Old}\nother.example:7000 {Old}\n");
        SetMode(Path.Combine("dotfiles", "known_hosts"), OwnerOnly);
        File.CreateSymbolicLink(Path.Combine(Dir, "known_hosts"), Path.Combine("dotfiles", "known_hosts"));

        AssertSucceeds(await RunAsync("known-hosts", "set", "example.org:7000", New, "--known-hosts", "known_hosts"));

        Assert.Equal(Path.Combine("dotfiles", "known_hosts"), new FileInfo(Path.Combine(Dir, "known_hosts")).LinkTarget);
        AssertMode(Path.Combine("dotfiles", "known_hosts"), OwnerOnly);
        OssuaryKnownHosts after = OssuaryKnownHosts.Load(real);
        Assert.Equal(KnownHostStatus.Trusted, after.Check("example.org", 7000, OssuaryPublicKey.Parse(New)));
        Assert.Equal(KnownHostStatus.Trusted, after.Check("other.example", 7000, OssuaryPublicKey.Parse(Old)));
        Assert.Equal(["known_hosts"], Directory.GetFiles(Path.GetDirectoryName(real)!).Select(Path.GetFileName));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task AChangedKeyIsReportedWithItsLineWhileAnotherUserHoldsTheFileLocked()
    {
        // The client's check, and its second read to say which lines hold the old key, took a shared
        // advisory lock (flock) to read the file. Any user who may open it may take an exclusive one
        // (`flock -x`, as nobody here): the client waited 10 s and failed with an I/O error instead of
        // refusing the changed key and naming the line, and every other connect through the file failed so.
        string serverKey = WriteKeyFile("server.key");
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--key", "server.key", "--echo");
        int port = ServerPort(server);
        File.SetUnixFileMode(Dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        string path = Path.Combine(Dir, "known_hosts");
        File.WriteAllText(path, $"# the old key\n127.0.0.1:{Port(port)} {Old}\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        using (await ForeignLock.TakeAsync(path))
        {
            ToolResult refused = await RunAsync("connect", $"127.0.0.1:{Port(port)}", "--known-hosts", "known_hosts");
            AssertFails(refused, 3, "REMOTE HOST IDENTIFICATION HAS CHANGED", serverKey, Old, "known_hosts:2");
        }
    }

    [Fact]
    public void RemoveRefusesAFileLongerThanAnyTrustFileWithoutReadingItWhole()
    {
        // remove and set read the file they hold into an array of the length it said it had, allocated at
        // once: the file held is whatever the name leads to once the lock is had (swapped in since the check,
        // or a log named by mistake), and a sparse file of many GiB was taken at its word. Past the bound of
        // any trust file (16 MiB) it is refused, as the library refuses it. Called here in this process, as
        // the file held is not the one the command checked: a sparse file, its first line the server's.
        MethodInfo remove = ToolMethod("Ossuary.Cli.KnownHostsFile", "Remove");
        object server = ToolMethod("Ossuary.Cli.Net.HostPort", "Parse").Invoke(null, ["example.org:7000"])!;
        string path = Path.Combine(Dir, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {Old}\n");
        long length = TrustFileSize.MaxBytes + 4096L;
        using (var grown = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            grown.SetLength(length); // a hole: nothing written
        }

        var thrown = Assert.Throws<TargetInvocationException>(() => remove.Invoke(null, [path, server]));

        Assert.Equal("CliException", thrown.InnerException!.GetType().Name);
        Assert.Contains($"{path}: the known-hosts file is longer than 16 MiB", thrown.InnerException.Message, StringComparison.Ordinal);
        Assert.Equal(2, thrown.InnerException.GetType().GetProperty("ExitCode")!.GetValue(thrown.InnerException)); // bad input
        Assert.Equal(length, new FileInfo(path).Length); // left as it was, no backup made
        Assert.False(File.Exists(path + ".old"));
    }

    [Fact]
    public void SayingWhichLinesHoldAChangedKeyRefusesALineLongerThanTheLibraryReads()
    {
        // The client refusing a changed key reads the file again to name the lines that hold the old key.
        // That read took lines with ReadLine, however long: a file replaced since the check by one with an
        // endless line was gathered whole into memory, where the library refuses a line past 64 KiB.
        // Called here in this process: that second read comes between the check and the message.
        MethodInfo linesFor = ToolMethod("Ossuary.Cli.KnownHostsFile", "LinesFor");
        object server = ToolMethod("Ossuary.Cli.Net.HostPort", "Parse").Invoke(null, ["example.org:7000"])!;
        string path = Path.Combine(Dir, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {Old}\n{new string('a', TrustFileLine.MaxLineLength + 1)}\nexample.org {Old}\n");

        var thrown = Assert.Throws<TargetInvocationException>(() => linesFor.Invoke(null, [path, server]));

        Assert.Equal("CliException", thrown.InnerException!.GetType().Name);
        Assert.Contains($"{path}:2: the line is longer than {TrustFileLine.MaxLineLength} characters", thrown.InnerException.Message, StringComparison.Ordinal);
        Assert.Equal(2, thrown.InnerException.GetType().GetProperty("ExitCode")!.GetValue(thrown.InnerException)); // bad input
    }

    [Fact]
    public async Task TheBackupsNameIsFlushedToDiskBeforeTheFileIsReplaced()
    {
        // remove and set rename FILE.old into place and then the new file over FILE, and flushed the folder
        // only after both: a crash before that flush, on a file system that does not keep renames in order,
        // could keep the new FILE and lose FILE.old, the only copy of the lines removed. Through a link,
        // FILE.old's folder (the link's) was not flushed at all. strace shows the order of the calls.
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        string path = Path.Combine(Dir, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {Old}\nother.example:7000 {Old}\n");
        string log = Path.Combine(Dir, "strace.log");

        using ToolProcess remove = ToolProcess.StartTraced(strace, Dir, "rename,renameat,renameat2,fsync", log, "known-hosts", "remove", "example.org:7000", "--known-hosts", "known_hosts");
        AssertSucceeds(await remove.WaitForExitAsync());

        string[] calls = File.ReadAllLines(log);
        int backup = Array.FindIndex(calls, call => call.Contains("rename", StringComparison.Ordinal) && call.Contains($"\"{path}.old\"", StringComparison.Ordinal));
        int replaced = Array.FindIndex(calls, call => call.Contains("rename", StringComparison.Ordinal) && call.Contains($"\"{path}\"", StringComparison.Ordinal));
        string trace = string.Join('\n', calls);
        Assert.True(backup >= 0 && replaced > backup, $"expected FILE.old, then FILE, renamed:\n{trace}");
        Assert.True(
            calls[(backup + 1)..replaced].Any(call => call.Contains("fsync(", StringComparison.Ordinal) && call.Contains($"<{Dir}>)", StringComparison.Ordinal)),
            $"the folder was not flushed between the two renames:\n{trace}");
    }

    /// <summary>What strace has written to its log so far, read without getting in its way.</summary>
    private static string ReadShared(string log)
    {
        using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>
    /// A `connect --tofu` to a fresh server whose exclusive flock on known_hosts strace holds back by 3 s
    /// (it opens, then locks): <paramref name="whileHeld"/> runs in that time. Requires the client to say
    /// it recorded the server's key; the caller checks that the key is in the file of that name.
    /// </summary>
    private async Task<(string ServerKey, int Port, ToolResult Connected)> TofuWithItsLockHeldBackAsync(Func<Task> whileHeld)
    {
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        string serverKey = WriteKeyFile("server.key");
        ToolProcess server = await StartServerAsync("listen", "--port", "0", "--bind", "127.0.0.1", "--key", "server.key", "--echo");
        int port = ServerPort(server);
        string log = Path.Combine(Dir, "strace.log");

        // Only the exclusive lock is held back: the checks read the file without a lock, so it is the
        // first flock of the thread that records the key (strace counts calls per thread).
        using ToolProcess client = ToolProcess.StartUnderStrace(
            strace, ["-f", "-y", "-o", log, "-e", "trace=flock", "-e", "inject=flock:delay_enter=3000000:when=1"],
            Dir, "connect", $"127.0.0.1:{Port(port)}", "--known-hosts", "known_hosts", "--tofu");
        var waited = System.Diagnostics.Stopwatch.StartNew();
        string? locking;
        while ((locking = (File.Exists(log) ? ReadShared(log) : "").Split('\n').FirstOrDefault(line => line.Contains("known_hosts>, LOCK_EX", StringComparison.Ordinal))) is null)
        {
            Assert.False(client.HasExited, $"the client ended before it locked the file:\n{client.Stderr}");
            Assert.True(waited.Elapsed < ToolProcess.HardTimeout, $"the client did not lock the file:\n{(File.Exists(log) ? ReadShared(log) : "")}");
            await Task.Delay(10);
        }

        // strace writes a call's line as it enters it and its result as it returns: the client must still
        // be in the held-back lock, or whileHeld would run after the key was recorded and prove nothing.
        Assert.False(locking.Contains(" = ", StringComparison.Ordinal), $"the exclusive lock was not held back:\n{ReadShared(log)}");
        await whileHeld();
        client.CloseStdin();

        // The connection itself may not outlast the held-back locks (the server's handshake timeout): what
        // matters is that what the client says it recorded is in the file.
        ToolResult connected = await client.WaitForExitAsync();
        Assert.Contains($"recorded key {serverKey} in known_hosts", connected.Stderr, StringComparison.Ordinal);
        return (serverKey, port, connected);
    }

    /// <summary>A public static method of the tool's own, for the reads it makes between a check and its message.</summary>
    private static MethodInfo ToolMethod(string type, string name) =>
        Assembly.LoadFrom(ToolProcess.AssemblyPath).GetType(type, throwOnError: true)!.GetMethod(name, BindingFlags.Public | BindingFlags.Static)!;
}
