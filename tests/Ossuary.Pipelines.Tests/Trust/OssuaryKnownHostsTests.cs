using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Trust;

/// <summary>The known-hosts file: <c>host[:port] key-hex [comment]</c> per line, ssh style.</summary>
public sealed class OssuaryKnownHostsTests : IDisposable
{
    private static readonly OssuaryPublicKey KeyA = OssuaryPublicKey.Parse(new string('a', 64));
    private static readonly OssuaryPublicKey KeyB = OssuaryPublicKey.Parse(new string('b', 64));
    private static readonly OssuaryPublicKey KeyC = OssuaryPublicKey.Parse(new string('c', 64));

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-known-hosts-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static OssuaryKnownHosts Parse(string text) => OssuaryKnownHosts.Parse(new StringReader(text));

    [Fact]
    public async Task AddRefusesAFileSwappedForANamedPipeAfterItsTypeWasCheckedWithoutWaitingOnIt()
    {
        // Add checked the file's type by name, then opened the name to read and write it: a named pipe renamed
        // over the file in between opened at once (for reading and writing, a FIFO does on Linux), and its read
        // then waited for a writer other than itself, for ever (a --tofu client's first connection with it).
        string path = Path.Combine(_directory, "known_hosts");
        string pipe = Path.Combine(_directory, "pipe");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", ["-m", "600", pipe]))
        {
            await mkfifo.WaitForExitAsync().Within();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path); // no file yet: an empty set
        TrustFilePermissions.TypeChecked = checkedPath =>
        {
            if (checkedPath == path)
            {
                File.Move(pipe, path, overwrite: true);
            }
        };
        try
        {
            UnauthorizedAccessException refused = await Assert.ThrowsAsync<UnauthorizedAccessException>(
                () => Task.Run(() => hosts.Add("example.org", 7000, KeyA)).Within());
            Assert.Contains("named pipe", refused.Message, StringComparison.Ordinal);
            Assert.Contains(path, refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            TrustFilePermissions.TypeChecked = null;
        }
    }

    [Fact]
    public void CommentsBlankLinesTabsAndTrailingCommentsAreTolerated()
    {
        OssuaryKnownHosts hosts = Parse(
            "# known hosts\n" +
            "\n" +
            "   \t\n" +
            "  # an indented comment\n" +
            $"example.org:7000 {KeyA} the lab server, added by hand\n" +
            $"\tother.example\t{KeyB.ToString().ToUpperInvariant()}\t\r\n" +
            $"10.0.0.1:22 {KeyC}");

        Assert.Equal(3, hosts.Count);
        Assert.Null(hosts.Path);
        Assert.Equal(KeyA, hosts.Find("example.org", 7000));
        Assert.Equal(KeyB, hosts.Find("other.example", 1));
        Assert.Equal(KeyC, hosts.Find("10.0.0.1", 22));
    }

    [Theory]
    [InlineData(UnixFileMode.GroupWrite)]
    [InlineData(UnixFileMode.OtherWrite)]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void AFileOthersMayWriteIsRefused(UnixFileMode others)
    {
        // Whoever can write it can pin their own key for a server, and be trusted as that server.
        string path = Path.Combine(_directory, "known_hosts");
        OssuaryKnownHosts empty = OssuaryKnownHosts.Load(path); // missing: an empty set that Add creates
        File.WriteAllText(path, $"example.org:7000 {KeyA}\n");
        File.SetUnixFileMode(path, File.GetUnixFileMode(path) | others);

        UnauthorizedAccessException refused = Assert.Throws<UnauthorizedAccessException>(() => OssuaryKnownHosts.Load(path));
        Assert.Throws<UnauthorizedAccessException>(() => empty.Add("example.net", 7000, KeyB));

        Assert.Contains(path, refused.Message);
        Assert.Contains("chmod go-w", refused.Message);
        Assert.Equal($"example.org:7000 {KeyA}\n", File.ReadAllText(path));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void AFileAnotherUserOwnsIsRefused()
    {
        // Its owner may pin their own key for a server at any moment, whatever its mode is now.
        string path = Path.Combine(_directory, "known_hosts");
        OssuaryKnownHosts empty = OssuaryKnownHosts.Load(path);
        File.WriteAllText(path, $"example.org:7000 {KeyA}\n");
        if (!ForeignOwner.TryGiveAway(path))
        {
            ForeignOwner.AssertOwnersAreRead(path);
            Assert.Equal(KeyA, OssuaryKnownHosts.Load(path).Find("example.org", 7000));
            return;
        }

        UnauthorizedAccessException refused = Assert.Throws<UnauthorizedAccessException>(() => OssuaryKnownHosts.Load(path));
        Assert.Throws<UnauthorizedAccessException>(() => empty.Find("example.org", 7000));
        Assert.Throws<UnauthorizedAccessException>(() => empty.Add("example.net", 7000, KeyB));

        Assert.Contains(path, refused.Message);
        Assert.Contains($"owned by user {ForeignOwner.Nobody}", refused.Message);
        Assert.Equal($"example.org:7000 {KeyA}\n", File.ReadAllText(path));
    }

    [Fact]
    public void AHostPortEntryMatchesOnlyThatPort()
    {
        OssuaryKnownHosts hosts = Parse($"example.org:7000 {KeyA}\n");

        Assert.Equal(KeyA, hosts.Find("example.org", 7000));
        Assert.Null(hosts.Find("example.org", 7001));
        Assert.Null(hosts.Find("example.com", 7000));
    }

    [Fact]
    public void AHostOnlyEntryMatchesEveryPort()
    {
        OssuaryKnownHosts hosts = Parse($"example.org {KeyA}\n");

        Assert.Equal(KeyA, hosts.Find("example.org", 1));
        Assert.Equal(KeyA, hosts.Find("example.org", 7000));
        Assert.Equal(KeyA, hosts.Find("example.org", 65535));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AnExactHostPortEntryWinsOverAHostOnlyOneWhicheverComesFirst(bool hostOnlyFirst)
    {
        string hostOnly = $"example.org {KeyA}\n";
        string exact = $"example.org:7000 {KeyB}\n";
        OssuaryKnownHosts hosts = Parse(hostOnlyFirst ? hostOnly + exact : exact + hostOnly);

        Assert.Equal(KeyB, hosts.Find("example.org", 7000));
        Assert.Equal(KeyA, hosts.Find("example.org", 7001));
        Assert.Equal(KnownHostStatus.Trusted, hosts.Check("example.org", 7000, KeyB));
        Assert.Equal(KnownHostStatus.Changed, hosts.Check("example.org", 7000, KeyA));
        Assert.Equal(KnownHostStatus.Trusted, hosts.Check("example.org", 7001, KeyA));
    }

    [Fact]
    public void HostsCompareCaseInsensitively()
    {
        OssuaryKnownHosts hosts = Parse($"Example.ORG:7000 {KeyA}\n");

        Assert.Equal(KeyA, hosts.Find("example.org", 7000));
        Assert.Equal(KeyA, hosts.Find("EXAMPLE.org", 7000));
    }

    [Fact]
    public void IPv6AddressesAreWrittenInBracketsWithAPort()
    {
        OssuaryKnownHosts hosts = Parse($"[::1]:7000 {KeyA}\n[fe80::1] {KeyB}\n2001:db8::5 {KeyC}\n");

        Assert.Equal(KeyA, hosts.Find("::1", 7000));
        Assert.Equal(KeyA, hosts.Find("[::1]", 7000));
        Assert.Null(hosts.Find("::1", 7001));
        Assert.Equal(KeyB, hosts.Find("fe80::1", 9)); // bracketed without a port: every port
        Assert.Equal(KeyC, hosts.Find("2001:db8::5", 9)); // bare IPv6 address: host only, every port
    }

    [Theory]
    [InlineData("[0::1]:7000", "::1")]
    [InlineData("[::1]:7000", "0:0:0:0:0:0:0:1")]
    [InlineData("[::1]:7000", "[0000::0001]")]
    [InlineData("[2001:DB8::5]:7000", "2001:db8:0::5")]
    [InlineData("127.0.0.1:7000", "::ffff:127.0.0.1")]
    [InlineData("[::ffff:10.0.0.1]:7000", "10.0.0.1")]
    [InlineData("example.org.:7000", "example.org")]
    [InlineData("example.org:7000", "EXAMPLE.org.")]
    [InlineData("\uFEFFexample.org:7000", "example.org")]
    [InlineData("b\u00FCcher.example:7000", "xn--bcher-kva.example")]
    [InlineData("xn--bcher-kva.example:7000", "B\u00DCCHER.example")]
    [InlineData("XN--BCHER-KVA.example.:7000", "b\u00FCcher.example")]
    public void EverySpellingOfAHostFindsItsEntriesSoAnotherKeyIsChangedNotUnknown(string recorded, string asked)
    {
        // Compared as spelled, [0::1] and [::1], or a name with and without its root dot, were two hosts:
        // a server at the other spelling presenting another key was Unknown, and trust on first use
        // recorded the impostor's key beside the real one instead of refusing it. So was a line that a
        // byte-order mark starts (a file an editor saved, appended to this one with cat), and so were an
        // internationalized name and its ASCII form (IDNA), which name the same server in DNS.
        string path = Path.Combine(_directory, "known_hosts");
        string text = $"other.example {KeyC}\n{recorded} {KeyA}\n";
        File.WriteAllText(path, text);
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        Assert.Equal(KnownHostStatus.Trusted, hosts.Check(asked, 7000, KeyA));
        Assert.Equal(KnownHostStatus.Changed, hosts.Check(asked, 7000, KeyB));
        Assert.Equal(KeyA, hosts.Find(asked, 7000));
        Assert.Throws<InvalidOperationException>(() => hosts.Add(asked, 7000, KeyB));
        Assert.Equal(text, File.ReadAllText(path));
        Assert.Equal(KnownHostStatus.Changed, Parse(text).Check(asked, 7000, KeyB));
    }

    [Fact]
    public void CheckSaysUnknownTrustedOrChanged()
    {
        OssuaryKnownHosts hosts = Parse($"example.org:7000 {KeyA}\n");

        Assert.Equal(KnownHostStatus.Trusted, hosts.Check("example.org", 7000, KeyA));
        Assert.Equal(KnownHostStatus.Changed, hosts.Check("example.org", 7000, KeyB));
        Assert.Equal(KnownHostStatus.Unknown, hosts.Check("example.org", 7001, KeyA));
        Assert.Equal(KnownHostStatus.Unknown, hosts.Check("example.net", 7000, KeyA));
    }

    [Fact]
    public void EveryKeyListedForAHostIsTrustedAsDuringARotation()
    {
        // README, key rotation: the new server key goes into the clients' known-hosts files next to
        // the old one, then the server switches; a client must accept either, as ssh does.
        string path = Path.Combine(_directory, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {KeyA} old\nexample.org:7000 {KeyB} new\nexample.net {KeyA}\nexample.net {KeyB}\n");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        Assert.Equal(KnownHostStatus.Trusted, hosts.Check("example.org", 7000, KeyA));
        Assert.Equal(KnownHostStatus.Trusted, hosts.Check("example.org", 7000, KeyB));
        Assert.Equal(KnownHostStatus.Changed, hosts.Check("example.org", 7000, KeyC));
        Assert.Equal(KnownHostStatus.Trusted, hosts.Check("example.net", 1, KeyB));

        hosts.Add("example.org", 7000, KeyB); // already trusted: nothing to record, nothing to refuse
        Assert.Equal(4, File.ReadAllLines(path).Length);
        Assert.Throws<InvalidOperationException>(() => hosts.Add("example.org", 7000, KeyC));
    }

    [Fact]
    public void ASetServingAClientFollowsTheKeysOtherProcessesPutInOrTakeOutOfItsFile()
    {
        // One set serves a long-running client's trust callbacks. The README's rotation pushes the new
        // key into its file next to the old, then takes the old one out; another process (a push, the
        // tool's known-hosts set or remove) does it, and the client must follow without a restart.
        string path = Path.Combine(_directory, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {KeyA} old\n");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);
        Assert.Equal(KnownHostStatus.Trusted, hosts.Check("example.org", 7000, KeyA));

        File.AppendAllText(path, $"example.org:7000 {KeyB} new\n");
        Assert.Equal(KnownHostStatus.Trusted, hosts.Check("example.org", 7000, KeyB));
        Assert.Equal(2, hosts.Count);

        File.WriteAllText(path, $"example.org:7000 {KeyB} new\n");
        Assert.Equal(KnownHostStatus.Changed, hosts.Check("example.org", 7000, KeyA)); // taken out: no longer trusted
        Assert.Equal(KeyB, hosts.Find("example.org", 7000));

        File.Delete(path);
        Assert.Equal(KnownHostStatus.Unknown, hosts.Check("example.org", 7000, KeyB));
    }

    [Fact]
    public void AMissingFileIsAnEmptySetAndIsNotCreatedByLoading()
    {
        string path = Path.Combine(_directory, "missing", "known_hosts");

        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        Assert.Equal(0, hosts.Count);
        Assert.Equal(path, hosts.Path);
        Assert.Equal(KnownHostStatus.Unknown, hosts.Check("example.org", 7000, KeyA));
        Assert.False(Directory.Exists(Path.GetDirectoryName(path)));
    }

    [Fact]
    public void AFolderIsRefusedNotTakenForAMissingFile()
    {
        // A folder named where the file belongs (~/.ossuary for ~/.ossuary/known_hosts) is no file, so
        // Load took it for a missing one: an empty set, every server unknown, and Add then failed with
        // "Access to the path ... is denied", a permission a chmod cannot fix.
        string folder = Directory.CreateDirectory(Path.Combine(_directory, ".ossuary")).FullName;

        UnauthorizedAccessException refused = Assert.Throws<UnauthorizedAccessException>(() => OssuaryKnownHosts.Load(folder));

        Assert.Equal($"{folder}: the known-hosts file is a folder, not a file; name the file.", refused.Message);
    }

    [Fact]
    public void AnEndlessLineIsRefusedWithoutBeingReadWhole()
    {
        var endless = new EndlessLineReader($"example.org:7000 {KeyA}\r\n");

        FormatException error = Assert.Throws<FormatException>(() => OssuaryKnownHosts.Parse(endless, "piped"));

        Assert.StartsWith("piped:2: the line is longer than", error.Message, StringComparison.Ordinal);
        Assert.True(endless.CharsRead < 1024 * 1024, $"read {endless.CharsRead} characters");
    }

    [Fact]
    public void AFileLongerThanAnyKnownHostsFileIsRefusedNamingItByLoadCheckAndAddWhichWritesNothing()
    {
        // Read whole however long, by Load and by every check of every connection, and copied whole by Add:
        // every entry of a huge file (a dump named by mistake, a file another writer kept growing) was in memory.
        string path = Path.Combine(_directory, "known_hosts");
        File.WriteAllText(path, $"example.org {KeyA}\n");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);
        LongTrustFile.Write(path, $"example.org {KeyA} recorded once more and again, a file far larger than any");
        long length = new FileInfo(path).Length;
        string expected = $"{path}: the known-hosts file is longer than 16 MiB";

        Assert.StartsWith(expected, Assert.Throws<FormatException>(() => OssuaryKnownHosts.Load(path)).Message, StringComparison.Ordinal);
        Assert.StartsWith(expected, Assert.Throws<FormatException>(() => hosts.Check("example.org", 7000, KeyA)).Message, StringComparison.Ordinal);
        Assert.StartsWith(expected, Assert.Throws<FormatException>(() => hosts.Add("example.net", 7000, KeyB)).Message, StringComparison.Ordinal);
        Assert.Equal(length, new FileInfo(path).Length);
    }

    [Fact]
    public void LinesEndWithCrLfLfOrCrAsReadLineEndsThem()
    {
        // Line numbers in errors count as an editor does, whichever line ends the file uses.
        FormatException error = Assert.Throws<FormatException>(() => Parse($"a:1 {KeyA}\r\nb:2 {KeyA}\rc:3 {KeyA}\n\r\nbroken"));

        Assert.StartsWith("known hosts:5:", error.Message, StringComparison.Ordinal);
        Assert.Equal(3, Parse($"a:1 {KeyA}\r\nb:2 {KeyB}\rc:3 {KeyC}").Count);
        Assert.Equal(KeyC, Parse($"a:1 {KeyA}\r\nb:2 {KeyB}\rc:3 {KeyC}\n").Find("c", 3));
    }

    [Fact]
    public void AddCreatesTheDirectoriesAndTheFileAndALaterLoadFindsTheEntry()
    {
        string path = Path.Combine(_directory, "a", "b", "known_hosts");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        hosts.Add("example.org", 7000, KeyA, "first use");

        Assert.Equal(KnownHostStatus.Trusted, hosts.Check("example.org", 7000, KeyA));
        Assert.Equal([$"example.org:7000 {KeyA} first use"], File.ReadAllLines(path));
        OssuaryKnownHosts reloaded = OssuaryKnownHosts.Load(path);
        Assert.Equal(1, reloaded.Count);
        Assert.Equal(KnownHostStatus.Trusted, reloaded.Check("example.org", 7000, KeyA));
    }

    [Fact]
    public void TheFoldersAddCreatesAreTheUsersOnly()
    {
        // A folder others may write lets them rename another known-hosts file in, whatever the
        // file's own mode: Add makes the folders it creates 0700 whatever the umask, as ssh does ~/.ssh.
        string path = Path.Combine(_directory, "a", "b", "known_hosts");

        OssuaryKnownHosts.Load(path).Add("example.org", 7000, KeyA);

        if (!OperatingSystem.IsWindows())
        {
            const UnixFileMode UserOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
            Assert.Equal(UserOnly, File.GetUnixFileMode(Path.Combine(_directory, "a")));
            Assert.Equal(UserOnly, File.GetUnixFileMode(Path.Combine(_directory, "a", "b")));
        }

        Assert.True(File.Exists(path));
    }

    [Fact]
    public void AddRefusesAKeyNoServerCanProveAndWritesNothing()
    {
        // The file would no longer load: every later connection checking it would fail as malformed.
        string path = Path.Combine(_directory, "known_hosts");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);
        OssuaryPublicKey zeros = OssuaryPublicKey.Parse(new string('0', 64));

        Assert.Throws<ArgumentException>("key", () => hosts.Add("example.org", 7000, OssuaryPublicKey.Anonymous));
        Assert.Throws<ArgumentException>("key", () => hosts.Add("example.org", 7000, zeros));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void AddAppendsAndKeepsWhatTheFileHeld()
    {
        string path = Path.Combine(_directory, "known_hosts");
        string original = $"# mine\n\nexample.org:7000 {KeyA} by hand\n";
        File.WriteAllText(path, original);
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        hosts.Add("::1", 7001, KeyB);
        hosts.Add("[::2]", 7002, KeyC, null);

        string text = File.ReadAllText(path);
        Assert.StartsWith(original, text, StringComparison.Ordinal);
        Assert.Equal([$"[::1]:7001 {KeyB}", $"[::2]:7002 {KeyC}"], text[original.Length..].Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
        OssuaryKnownHosts reloaded = OssuaryKnownHosts.Load(path);
        Assert.Equal(3, reloaded.Count);
        Assert.Equal(KeyA, reloaded.Find("example.org", 7000));
        Assert.Equal(KeyB, reloaded.Find("::1", 7001));
        Assert.Equal(KeyC, reloaded.Find("::2", 7002));
    }

    [Fact]
    public void AddStartsANewLineWhenTheFileDoesNotEndWithOne()
    {
        string path = Path.Combine(_directory, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {KeyA} no newline at the end");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        hosts.Add("example.net", 7000, KeyB);

        OssuaryKnownHosts reloaded = OssuaryKnownHosts.Load(path);
        Assert.Equal(2, reloaded.Count);
        Assert.Equal(KeyA, reloaded.Find("example.org", 7000));
        Assert.Equal(KeyB, reloaded.Find("example.net", 7000));
    }

    [Fact]
    public void AddToAUtf16FileWritesTheLineInTheFilesEncoding()
    {
        // Windows PowerShell 5's `>` and Out-File write UTF-16 with a byte-order mark, which Load reads.
        // Add appended its line in UTF-8 all the same: read back as UTF-16 it was one line of garbage,
        // and the file, said to trust the new host, was malformed for every later Load, Check and Add.
        string path = Path.Combine(_directory, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {KeyA} by hand\r\n", System.Text.Encoding.Unicode);
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        hosts.Add("example.net", 7000, KeyB);

        OssuaryKnownHosts reloaded = OssuaryKnownHosts.Load(path);
        Assert.Equal(2, reloaded.Count);
        Assert.Equal(KeyA, reloaded.Find("example.org", 7000));
        Assert.Equal(KeyB, reloaded.Find("example.net", 7000));
        Assert.Equal($"example.org:7000 {KeyA} by hand\r\nexample.net:7000 {KeyB}{Environment.NewLine}", File.ReadAllText(path, System.Text.Encoding.Unicode));
    }

    [Fact]
    public void AnAddThatCannotBeWrittenLeavesTheFileAsItWas()
    {
        // The disk fills up in the middle of the append: the line's first bytes fit in the file's last
        // page, the rest do not. The cut line used to stay, and every later Load, Check or Add called
        // the file malformed, refusing every connection.
        using var disk = FullDisk.Mount();
        string path = Path.Combine(disk.Path, "known_hosts");
        string held = $"# {new string('x', 4000 - 2 - 1 - 80 - 1)}\nexample.org:7000 {KeyA} the lab\n";
        held += new string('#', 4050 - held.Length - 1) + "\n";
        File.WriteAllText(path, held);
        disk.Fill();
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        Assert.Throws<IOException>(() => hosts.Add("other.example", 7000, KeyB, "a comment long enough to need a new page"));

        Assert.Equal(held, File.ReadAllText(path));
        Assert.Equal(KnownHostStatus.Trusted, OssuaryKnownHosts.Load(path).Check("example.org", 7000, KeyA));
        disk.Free();
        hosts.Add("other.example", 7000, KeyB);
        Assert.Equal(KnownHostStatus.Trusted, OssuaryKnownHosts.Load(path).Check("other.example", 7000, KeyB));
    }

    [Theory]
    [InlineData("example.net:7000 bbbbbbbbbbbb")] // cut in the key
    [InlineData("example.n")] // cut in the host
    [InlineData("\0\0\0\0\0\0\0\0")] // a file system that kept the length but not the bytes (XFS after a power cut)
    public void ALastLineCutShortByACrashIsIgnoredAndAddReplacesIt(string cut)
    {
        // Add appends its line in place: a crash in the middle of it (a power cut) leaves the line's
        // first bytes and no line break. Every later Load, Check and Add called the whole file malformed,
        // so one crash during a `connect --tofu` refused every later connection until the file was
        // edited by hand. Such a line can only be the start of the entry being written: a prefix that
        // holds the host and the whole key reads as that entry, anything shorter trusts nobody.
        string path = Path.Combine(_directory, "known_hosts");
        string held = $"example.org:7000 {KeyA} the lab\n";
        File.WriteAllText(path, held + cut);

        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);
        Assert.Equal(1, hosts.Count);
        Assert.Equal(KnownHostStatus.Trusted, hosts.Check("example.org", 7000, KeyA));
        Assert.Equal(KnownHostStatus.Unknown, hosts.Check("example.net", 7000, KeyB));

        hosts.Add("example.net", 7000, KeyB);

        Assert.Equal(held + $"example.net:7000 {KeyB}{Environment.NewLine}", File.ReadAllText(path));
        OssuaryKnownHosts reloaded = OssuaryKnownHosts.Load(path);
        Assert.Equal(KnownHostStatus.Trusted, reloaded.Check("example.org", 7000, KeyA));
        Assert.Equal(KnownHostStatus.Trusted, reloaded.Check("example.net", 7000, KeyB));
    }

    [Fact]
    public void AFileOfBinaryBytesWithoutALineBreakIsRefusedAndAddLeavesItAlone()
    {
        // A last line without a line break that does not parse was forgiven as what a crash left of a line
        // Add was writing, whatever it held: a binary file (a raw 32-byte key, named by mistake for
        // --known-hosts) without a CR or LF byte was an empty known-hosts file, and Add (connect --tofu)
        // cut it away and wrote its line in its place: the file's bytes were gone. A crash leaves text, the
        // start of "host[:port] key", or zeros; bytes no text has refuse the file as malformed.
        string path = Path.Combine(_directory, "known_hosts");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path); // missing when the client starts
        byte[] binary = [0x9C, 0x01, 0x7F, 0x45, 0xB3, 0x00, 0x21, 0xE8, 0x5A, 0x1B, 0xC4, 0x66, 0x02, 0xF0, 0x3D, 0x88,
            0x11, 0xA7, 0x20, 0x09, 0xD5, 0x4E, 0x8B, 0x13, 0x6C, 0xFE, 0x07, 0x92, 0x30, 0xBB, 0x1F, 0x44];
        File.WriteAllBytes(path, binary);

        FormatException refused = Assert.Throws<FormatException>(() => OssuaryKnownHosts.Load(path));
        Assert.StartsWith($"{path}:1: ", refused.Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => hosts.Check("example.org", 7000, KeyA));
        Assert.Throws<FormatException>(() => hosts.Add("example.org", 7000, KeyA));
        Assert.Equal(binary, File.ReadAllBytes(path));
    }

    [Fact]
    public void ALastLineCutShortIsReportedOnceThroughTheLoggerGivenToLoad()
    {
        // The cut line is left out without a word: a user whose file a crash damaged never learned it,
        // nor that a key they meant to record was not. Reported as a Warning (event 28) naming the file
        // and the line, once for the set rather than at each check of every connection.
        string path = Path.Combine(_directory, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {KeyA}\nexample.net:70");
        var logger = new Microsoft.Extensions.Logging.Testing.FakeLogger();

        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path, logger);
        Assert.Equal(KnownHostStatus.Trusted, hosts.Check("example.org", 7000, KeyA));
        Assert.Equal(1, hosts.Count);

        Microsoft.Extensions.Logging.Testing.FakeLogRecord record = Assert.Single(logger.Collector.GetSnapshot());
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, record.Level);
        Assert.Equal(28, record.Id.Id);
        Assert.Contains(path + ":2", record.Message, StringComparison.Ordinal);
        Assert.Contains("cut short", record.Message, StringComparison.Ordinal);

        hosts.Add("example.net", 7000, KeyB); // takes the cut line's place
        Assert.Single(logger.Collector.GetSnapshot());
        File.AppendAllText(path, "again.exam"); // cut again: a new report
        Assert.Equal(2, hosts.Count);
        Assert.Equal(2, logger.Collector.Count);
        Assert.Contains(path + ":3", logger.Collector.LatestRecord.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ACutLastLineOfAUtf16FileIsDroppedAtItsLineBreak()
    {
        // The cut line's bytes, not its characters, are what Add takes away: in UTF-16 a crash may even
        // leave half a character.
        string path = Path.Combine(_directory, "known_hosts");
        string held = $"example.org:7000 {KeyA} by hand\r\n";
        byte[] bytes = [.. System.Text.Encoding.Unicode.GetPreamble(), .. System.Text.Encoding.Unicode.GetBytes(held + "example.net:70"), (byte)'0'];
        File.WriteAllBytes(path, bytes);
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        hosts.Add("example.net", 7000, KeyB);

        Assert.Equal(held + $"example.net:7000 {KeyB}{Environment.NewLine}", File.ReadAllText(path, System.Text.Encoding.Unicode));
    }

    [Fact]
    public void AMalformedLineThatEndsWithALineBreakIsStillRefused()
    {
        // Only what a crash leaves is let go: a whole line, ended, that does not parse was written so.
        string path = Path.Combine(_directory, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {KeyA}\nexample.net:7000 bbbb\n");

        FormatException refused = Assert.Throws<FormatException>(() => OssuaryKnownHosts.Load(path));
        Assert.StartsWith($"{path}:2: ", refused.Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => Parse($"example.org:7000 {KeyA}\nexample.net:7000 bbbb"));
    }

    [Fact]
    public void AddKeepsAMultiLineCommentOnOneLine()
    {
        string path = Path.Combine(_directory, "known_hosts");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        hosts.Add("example.org", 7000, KeyA, $"first\nevil.example {KeyB}\r\nend");

        Assert.Single(File.ReadAllLines(path));
        OssuaryKnownHosts reloaded = OssuaryKnownHosts.Load(path);
        Assert.Equal(1, reloaded.Count);
        Assert.Null(reloaded.Find("evil.example", 7000));
    }

    [Fact]
    public void AddRefusesAChangedKeyAndLeavesTheFileAlone()
    {
        string path = Path.Combine(_directory, "known_hosts");
        File.WriteAllText(path, $"example.org:7000 {KeyA}\nhost-only.example {KeyA}\n");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        InvalidOperationException changed = Assert.Throws<InvalidOperationException>(() => hosts.Add("example.org", 7000, KeyB));
        Assert.Contains("example.org:7000", changed.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => hosts.Add("host-only.example", 9, KeyB));

        Assert.Equal($"example.org:7000 {KeyA}\nhost-only.example {KeyA}\n", File.ReadAllText(path));
        Assert.Equal(KnownHostStatus.Changed, hosts.Check("example.org", 7000, KeyB));
        Assert.Equal(2, hosts.Count);
    }

    [Fact]
    public void AChangedKeyRefusedByAddNamesTheFileAndTheLinesThatHoldTheOldKey()
    {
        // A trust callback that records keys on first use (AddAsync) is told of a changed key only by this
        // exception, which said "The known-hosts file already holds a different key for example.org:7000":
        // not which file, nor which line to remove, where the tool's own refusal names both.
        string path = Path.Combine(_directory, "known_hosts");
        File.WriteAllText(path, $"# servers\nexample.org:7000 {KeyA} old\nother.example {KeyC}\nexample.org:7000 {KeyC} new\n");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        InvalidOperationException changed = Assert.Throws<InvalidOperationException>(() => hosts.Add("example.org", 7000, KeyB));

        Assert.Contains($"{path}:2, {path}:4", changed.Message, StringComparison.Ordinal);
        Assert.Contains("example.org:7000", changed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TwoWritersTrustingOnFirstUseAtOnceRecordOneKeyAndTheLoserSeesTheWinners()
    {
        // Separate sets, as two processes would have: each read the file before either wrote.
        // .NET's file lock is per open file, so two sets in one process conflict as two processes do.
        for (int round = 0; round < 20; round++)
        {
            string path = Path.Combine(_directory, $"known_hosts_{round}");
            OssuaryKnownHosts first = OssuaryKnownHosts.Load(path);
            OssuaryKnownHosts second = OssuaryKnownHosts.Load(path);
            Assert.Equal(KnownHostStatus.Unknown, first.Check("example.org", 7000, KeyA));
            Assert.Equal(KnownHostStatus.Unknown, second.Check("example.org", 7000, KeyB));
            using var start = new Barrier(2);

            Task<bool> a = Task.Factory.StartNew(() => TryAdd(first, KeyA, start), TaskCreationOptions.LongRunning);
            Task<bool> b = Task.Factory.StartNew(() => TryAdd(second, KeyB, start), TaskCreationOptions.LongRunning);
            bool[] added = await Task.WhenAll(a, b).Within();

            Assert.Equal(1, added.Count(x => x)); // exactly one writer recorded its key
            (OssuaryPublicKey winner, OssuaryKnownHosts loser, OssuaryPublicKey lost) = added[0] ? (KeyA, second, KeyB) : (KeyB, first, KeyA);
            OssuaryKnownHosts reloaded = OssuaryKnownHosts.Load(path);
            Assert.Equal(1, reloaded.Count);
            Assert.Equal(winner, reloaded.Find("example.org", 7000));
            Assert.Equal(KnownHostStatus.Changed, loser.Check("example.org", 7000, lost));
            Assert.Equal(winner, loser.Find("example.org", 7000));
        }
    }

    [Fact]
    public void AddingAKeyAnotherWriterAlreadyRecordedAddsNoSecondLine()
    {
        string path = Path.Combine(_directory, "known_hosts");
        OssuaryKnownHosts first = OssuaryKnownHosts.Load(path);
        OssuaryKnownHosts second = OssuaryKnownHosts.Load(path);

        first.Add("example.org", 7000, KeyA);
        second.Add("example.org", 7000, KeyA);

        Assert.Equal(1, OssuaryKnownHosts.Load(path).Count);
        Assert.Equal(KnownHostStatus.Trusted, second.Check("example.org", 7000, KeyA));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void AReaderThatOpenedTheFileBeforeAnAddReadsTheOldFileWhole()
    {
        // Readers take no lock (another user's lock on a file they may read stalled every check), so a
        // writer must never change the file a reader may have open: Add appended in place, and a check
        // reading meanwhile could meet half a line. It writes a new file and renames it over the old one,
        // with the old one's mode, and through a link it replaces the link's target, not the link.
        string real = Path.Combine(_directory, "real_known_hosts");
        string path = Path.Combine(_directory, "known_hosts");
        string held = $"example.org:7000 {KeyA}\n";
        File.WriteAllText(real, held);
        File.SetUnixFileMode(real, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.CreateSymbolicLink(path, real);
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        using (FileStream reading = UnlockedOpen.Read(path, "known-hosts")) // a check that opened the file just before
        {
            hosts.Add("example.net", 7000, KeyB);

            using var reader = new StreamReader(reading);
            Assert.Equal(held, reader.ReadToEnd());
        }

        Assert.Equal(held + $"example.net:7000 {KeyB}{Environment.NewLine}", File.ReadAllText(real));
        Assert.Equal(real, new FileInfo(path).LinkTarget);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(real));
        Assert.Equal(["known_hosts", "real_known_hosts"], Directory.GetFiles(_directory).Select(Path.GetFileName).Order());
        Assert.Equal(KnownHostStatus.Trusted, OssuaryKnownHosts.Load(path).Check("example.net", 7000, KeyB));
    }

    [Fact]
    public async Task TwoWritersTrustingTwoHostsOnFirstUseAtOnceRecordBoth()
    {
        // Each writer replaces the whole file: one that read it before the other's rename and wrote after
        // would drop the other's host, which the next connection would meet as unknown again.
        for (int round = 0; round < 20; round++)
        {
            string path = Path.Combine(_directory, $"known_hosts_{round}");
            File.WriteAllText(path, $"other.example {KeyC}\n");
            OssuaryKnownHosts first = OssuaryKnownHosts.Load(path);
            OssuaryKnownHosts second = OssuaryKnownHosts.Load(path);
            using var start = new Barrier(2);

            Task a = Task.Factory.StartNew(() => { start.SignalAndWait(); first.Add("a.example", 7000, KeyA); }, TaskCreationOptions.LongRunning);
            Task b = Task.Factory.StartNew(() => { start.SignalAndWait(); second.Add("b.example", 7000, KeyB); }, TaskCreationOptions.LongRunning);
            await Task.WhenAll(a, b).Within();

            OssuaryKnownHosts reloaded = OssuaryKnownHosts.Load(path);
            Assert.Equal(3, reloaded.Count);
            Assert.Equal(KnownHostStatus.Trusted, reloaded.Check("a.example", 7000, KeyA));
            Assert.Equal(KnownHostStatus.Trusted, reloaded.Check("b.example", 7000, KeyB));
        }
    }

    private static bool TryAdd(OssuaryKnownHosts hosts, OssuaryPublicKey key, Barrier start)
    {
        start.SignalAndWait();
        try
        {
            hosts.Add("example.org", 7000, key, "first use");
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    [Theory]
    [InlineData("", 7000)]
    [InlineData("two words", 7000)]
    [InlineData("#comment", 7000)]
    [InlineData("line\nbreak", 7000)]
    [InlineData("example.org", 0)]
    [InlineData("example.org", 65536)]
    public void AddRefusesAHostOrPortThatWouldNotReadBack(string host, int port)
    {
        string path = Path.Combine(_directory, "known_hosts");
        OssuaryKnownHosts hosts = OssuaryKnownHosts.Load(path);

        Assert.ThrowsAny<ArgumentException>(() => hosts.Add(host, port, KeyA));

        Assert.False(File.Exists(path));
        Assert.Equal(0, hosts.Count);
    }

    [Fact]
    public void AnInMemorySetAddsWithoutAFile()
    {
        OssuaryKnownHosts hosts = Parse("");

        hosts.Add("example.org", 7000, KeyA);

        Assert.Equal(KeyA, hosts.Find("example.org", 7000));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_directory));
    }

    [Theory]
    [InlineData("example.org", "expected 'host[:port] key-hex [comment]'")]
    [InlineData("example.org:7000 not-a-key", "64 hex characters")]
    [InlineData("example.org:7000 aaaa", "64 hex characters")]
    [InlineData("example.org:port KEY", "'port' is not a port number")]
    [InlineData("example.org:0 KEY", "'0' is not a port number")]
    [InlineData("example.org:65536 KEY", "'65536' is not a port number")]
    [InlineData("example.org: KEY", "'' is not a port number")]
    [InlineData(":7000 KEY", "the host is empty")]
    [InlineData("[::1 KEY", "[::1]:7000")]
    [InlineData("[::1]7000 KEY", "[::1]:7000")]
    [InlineData("[]:7000 KEY", "the host is empty")]
    [InlineData("exam\u200Bple.org:7000 KEY", "U+200B")]
    [InlineData("example.org\u00AD:7000 KEY", "U+00AD")]
    [InlineData("example.org:7000 0100000000000000000000000000000000000000000000000000000000000000", "no peer can prove")]
    [InlineData("example.org:7000 0000000000000000000000000000000000000000000000000000000000000000", "no peer can prove")]
    public void AMalformedLineIsReportedWithItsNumber(string line, string problem)
    {
        string text = $"# header\n\nexample.net {KeyA}\n{line.Replace("KEY", KeyB.ToString(), StringComparison.Ordinal)}\nexample.com {KeyC}\n";

        FormatException parsed = Assert.Throws<FormatException>(() => Parse(text));
        Assert.StartsWith("known hosts:4: ", parsed.Message, StringComparison.Ordinal);
        Assert.Contains(problem, parsed.Message, StringComparison.Ordinal);

        string path = Path.Combine(_directory, "known_hosts");
        File.WriteAllText(path, text);
        FormatException loaded = Assert.Throws<FormatException>(() => OssuaryKnownHosts.Load(path));
        Assert.StartsWith($"{path}:4: ", loaded.Message, StringComparison.Ordinal);
    }
}
