using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Trust;

/// <summary>The authorized-keys file: <c>key-hex [comment]</c> per line, a server's allow-list.</summary>
public sealed class OssuaryAuthorizedKeysTests : IDisposable
{
    private static readonly OssuaryPublicKey KeyA = OssuaryPublicKey.Parse(new string('a', 64));
    private static readonly OssuaryPublicKey KeyB = OssuaryPublicKey.Parse(new string('b', 64));
    private static readonly OssuaryPublicKey KeyC = OssuaryPublicKey.Parse("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");

    private readonly string _directory = Directory.CreateTempSubdirectory("ossuary-authorized-keys-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void KeysCommentsAndBlankLinesAreRead()
    {
        IReadOnlyList<OssuaryPublicKey> keys = OssuaryAuthorizedKeys.Parse(new StringReader(
            "# the fleet\n" +
            "\n" +
            $"{KeyA}\n" +
            "   \t  \n" +
            $"  {KeyB} sensor 12, roof # not a comment marker here\r\n" +
            "    # indented comment\n" +
            $"{KeyC.ToString().ToUpperInvariant()}\tgateway"));

        Assert.Equal([KeyA, KeyB, KeyC], keys);
    }

    [Fact]
    public void AnEmptyFileHasNoKeys()
    {
        Assert.Empty(OssuaryAuthorizedKeys.Parse(new StringReader("")));
        Assert.Empty(OssuaryAuthorizedKeys.Parse(new StringReader("# nobody yet\n\n")));
    }

    [Fact]
    public async Task AFileSwappedForANamedPipeAfterItsTypeWasCheckedIsRefusedWithoutWaitingForAWriter()
    {
        // The type was checked by name and the name then opened: a named pipe renamed over the file in
        // between was opened for reading, which waits for a writer, for ever if none comes (a server's
        // start-up, or its watcher, and every revocation after it). The opened file itself is checked now.
        string path = Path.Combine(_directory, "authorized_keys");
        await File.WriteAllTextAsync(path, $"{KeyA}\n");
        string pipe = Path.Combine(_directory, "pipe");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", ["-m", "600", pipe]))
        {
            await mkfifo.WaitForExitAsync().Within();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        TrustFilePermissions.TypeChecked = checkedPath =>
        {
            if (checkedPath == path)
            {
                File.Move(pipe, path, overwrite: true);
            }
        };
        try
        {
            UnauthorizedAccessException refused = await Assert.ThrowsAsync<UnauthorizedAccessException>(() => Task.Run(() => OssuaryAuthorizedKeys.Load(path)).Within());
            Assert.Contains("named pipe", refused.Message, StringComparison.Ordinal);
            Assert.Contains(path, refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            TrustFilePermissions.TypeChecked = null;
            if (File.Exists(path))
            {
                // Lets an open still waiting on the pipe go (opened for reading and writing, a FIFO opens at once on Linux).
                using var _ = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);
            }
        }
    }

    [Fact]
    public async Task AFileMissingWhenOpenedAndANamedPipeThenIsRefusedWithoutWaitingForAWriter()
    {
        // When the non-blocking open failed (no such file, no permission), the name was opened again by .NET,
        // blocking: a named pipe put there in between was opened for reading, which waits for a writer.
        string path = Path.Combine(_directory, "authorized_keys");
        string pipe = Path.Combine(_directory, "pipe");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", ["-m", "600", pipe]))
        {
            await mkfifo.WaitForExitAsync().Within();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        UnlockedOpen.Refused = refusedPath =>
        {
            if (refusedPath == path)
            {
                File.Move(pipe, path);
            }
        };
        try
        {
            await Assert.ThrowsAsync<FileNotFoundException>(() => Task.Run(() => OssuaryAuthorizedKeys.Load(path)).Within());
        }
        finally
        {
            UnlockedOpen.Refused = null;
            if (File.Exists(path))
            {
                // Lets an open still waiting on the pipe go (opened for reading and writing, a FIFO opens at once on Linux).
                using var _ = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);
            }
        }
    }

    [Fact]
    public void LoadReadsAFile()
    {
        string path = Path.Combine(_directory, "authorized_keys");
        File.WriteAllLines(path, ["# clients", OssuaryAuthorizedKeys.FormatLine(KeyA, "alice"), OssuaryAuthorizedKeys.FormatLine(KeyB), OssuaryAuthorizedKeys.FormatLine(KeyC, "  ")]);

        Assert.Equal([KeyA, KeyB, KeyC], OssuaryAuthorizedKeys.Load(path));
        Assert.Equal($"{KeyA} alice", File.ReadAllLines(path)[1]);
        Assert.Equal(KeyB.ToString(), File.ReadAllLines(path)[2]);
    }

    [Theory]
    [InlineData(UnixFileMode.GroupWrite)]
    [InlineData(UnixFileMode.OtherWrite)]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void AFileOthersMayWriteIsRefused(UnixFileMode others)
    {
        // Whoever can write the allow-list can admit themselves (OpenSSH's StrictModes refuses it too).
        string path = Path.Combine(_directory, "authorized_keys");
        File.WriteAllLines(path, [OssuaryAuthorizedKeys.FormatLine(KeyA)]);
        File.SetUnixFileMode(path, File.GetUnixFileMode(path) | others);

        UnauthorizedAccessException refused = Assert.Throws<UnauthorizedAccessException>(() => OssuaryAuthorizedKeys.Load(path));

        Assert.Contains(path, refused.Message);
        Assert.Contains("chmod go-w", refused.Message);
    }

    [Theory]
    [InlineData("the file itself")]
    [InlineData("a hard link")]
    [InlineData("a symbolic link")]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void AFileAnotherUserOwnsIsRefused(string reachedThrough)
    {
        // Its owner may rewrite it, or make it writable, at any moment after its mode was checked
        // (OpenSSH's StrictModes refuses it too). A hard link keeps the owner of the file it links,
        // and a symbolic link leads to a file whose owner counts, not the link's.
        string owned = Path.Combine(_directory, "theirs");
        File.WriteAllLines(owned, [OssuaryAuthorizedKeys.FormatLine(KeyA)]);
        string path = Path.Combine(_directory, "authorized_keys");
        switch (reachedThrough)
        {
            case "a hard link":
                Link(owned, path);
                break;
            case "a symbolic link":
                File.CreateSymbolicLink(path, owned);
                break;
            default:
                path = owned;
                break;
        }

        if (!ForeignOwner.TryGiveAway(owned))
        {
            ForeignOwner.AssertOwnersAreRead(path);
            Assert.Equal([KeyA], OssuaryAuthorizedKeys.Load(path)); // ours: taken
            return;
        }

        UnauthorizedAccessException refused = Assert.Throws<UnauthorizedAccessException>(() => OssuaryAuthorizedKeys.Load(path));

        Assert.Contains(path, refused.Message);
        Assert.Contains($"owned by user {ForeignOwner.Nobody}", refused.Message);
        Assert.Contains("chown", refused.Message);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task AFileAnotherUserHoldsLockedIsReadAllTheSame()
    {
        // .NET takes an advisory lock (flock) on each file it opens on Unix, a shared one to read, and
        // the open failed at once ("being used by another process") while anyone held an exclusive one.
        // Any user who may read a file may lock it, and an allow-list is often readable by all (0644 in
        // /etc/ossuary): any local user could keep a server from starting, and keep a revoked key admitted
        // (a reload that cannot read the file keeps the keys it had).
        File.SetUnixFileMode(_directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        string path = Path.Combine(_directory, "authorized_keys");
        File.WriteAllLines(path, [OssuaryAuthorizedKeys.FormatLine(KeyA)]);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        using (await ForeignLock.TakeAsync(path))
        {
            Assert.Equal([KeyA], OssuaryAuthorizedKeys.Load(path));
        }
    }

    private static void Link(string target, string name)
    {
        using var ln = System.Diagnostics.Process.Start("ln", [target, name]);
        ln.WaitForExit();
        Assert.Equal(0, ln.ExitCode);
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    [InlineData("\r")]
    public void AFormattedLineIsOneLineWhateverItsCommentHolds(string lineBreak)
    {
        // A device name from a form, say: what follows its line break must not become a key of its own.
        string path = Path.Combine(_directory, "authorized_keys");
        File.WriteAllLines(path, [OssuaryAuthorizedKeys.FormatLine(KeyA, $"sensor 7{lineBreak}{KeyB}")]);

        Assert.Equal([KeyA], OssuaryAuthorizedKeys.Load(path));
        Assert.Equal($"{KeyA} sensor 7 {KeyB}", Assert.Single(File.ReadAllLines(path)));
    }

    [Fact]
    public void FormatLineRefusesAKeyNoClientCanProve()
    {
        Assert.Throws<ArgumentException>("key", () => OssuaryAuthorizedKeys.FormatLine(OssuaryPublicKey.Anonymous));
        Assert.Throws<ArgumentException>("key", () => OssuaryAuthorizedKeys.FormatLine(OssuaryPublicKey.Parse(new string('0', 64)), "placeholder"));
    }

    [Fact]
    public void AFolderIsRefusedAsAFolder()
    {
        // A folder named where the file belongs (/etc/ossuary for /etc/ossuary/authorized_keys) was
        // refused as "Access to the path '/etc/ossuary' is denied.", a permission a chmod cannot fix.
        UnauthorizedAccessException refused = Assert.Throws<UnauthorizedAccessException>(() => OssuaryAuthorizedKeys.Load(_directory));

        Assert.Equal($"{_directory}: the authorized-keys file is a folder, not a file; name the file.", refused.Message);
    }

    [Fact]
    public void AnEndlessLineIsRefusedWithoutBeingReadWhole()
    {
        // `--authorized-keys - < /dev/zero`: ReadLine gathered the line until the memory ran out.
        var endless = new EndlessLineReader($"{new string('a', 64)} first\n");

        FormatException error = Assert.Throws<FormatException>(() => OssuaryAuthorizedKeys.Parse(endless, "stdin"));

        Assert.StartsWith("stdin:2: the line is longer than", error.Message, StringComparison.Ordinal);
        Assert.True(endless.CharsRead < 1024 * 1024, $"read {endless.CharsRead} characters");
    }

    [Fact]
    public void AFileLongerThanAnyAuthorizedKeysFileIsRefusedNamingIt()
    {
        // Read whole however long: every key of a huge file (a dump named by mistake, a file kept growing) was held in memory.
        string path = Path.Combine(_directory, "authorized_keys");
        LongTrustFile.Write(path, OssuaryAuthorizedKeys.FormatLine(KeyA, "a device of a fleet far larger than any"));

        FormatException refused = Assert.Throws<FormatException>(() => OssuaryAuthorizedKeys.Load(path));

        Assert.StartsWith($"{path}: the authorized-keys file is longer than 16 MiB", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFileSwappedForANamedPipeWhileItsLeaseIsBrokenIsRefusedWithoutWaitingForAWriter()
    {
        // A lease another process holds (here this one's, see LeasedFile) makes the non-blocking open fail with
        // EWOULDBLOCK while it is broken, and the name was then opened again by .NET, blocking: a named pipe put
        // there in between was opened for reading, which waits for a writer, for ever if none comes.
        string path = Path.Combine(_directory, "authorized_keys");
        await File.WriteAllTextAsync(path, $"{KeyA}\n");
        string pipe = Path.Combine(_directory, "pipe");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", ["-m", "600", pipe]))
        {
            await mkfifo.WaitForExitAsync().Within();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        using var lease = new LeasedFile(path);
        int swapped = 0;
        UnlockedOpen.Refused = refusedPath =>
        {
            if (refusedPath == path && Interlocked.Exchange(ref swapped, 1) == 0)
            {
                File.Move(pipe, path, overwrite: true);
            }
        };
        try
        {
            UnauthorizedAccessException refused = await Assert.ThrowsAsync<UnauthorizedAccessException>(() => Task.Run(() => OssuaryAuthorizedKeys.Load(path)).Within());
            Assert.Contains("named pipe", refused.Message, StringComparison.Ordinal);
            Assert.Equal(1, swapped); // the lease did refuse the first open
        }
        finally
        {
            UnlockedOpen.Refused = null;
            if (swapped == 1)
            {
                // Lets an open still waiting on the pipe go (opened for reading and writing, a FIFO opens at once on Linux).
                using var _ = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);
            }
        }
    }

    [Fact]
    public void AMissingFileIsAnError() =>
        Assert.Throws<FileNotFoundException>(() => OssuaryAuthorizedKeys.Load(Path.Combine(_directory, "missing")));

    [Theory]
    [InlineData("not-a-key")]
    [InlineData("aaaa comment")]
    [InlineData("KEYff")]
    [InlineData("host:7000 KEY")]
    public void AMalformedLineIsReportedWithItsNumber(string line)
    {
        string text = $"# header\n{KeyA}\n\n{line.Replace("KEY", KeyB.ToString(), StringComparison.Ordinal)}\n{KeyC}\n";

        FormatException parsed = Assert.Throws<FormatException>(() => OssuaryAuthorizedKeys.Parse(new StringReader(text)));
        Assert.StartsWith("authorized keys:4: ", parsed.Message, StringComparison.Ordinal);
        Assert.Contains("64 hex characters", parsed.Message, StringComparison.Ordinal);

        string path = Path.Combine(_directory, "authorized_keys");
        File.WriteAllText(path, text);
        FormatException loaded = Assert.Throws<FormatException>(() => OssuaryAuthorizedKeys.Load(path));
        Assert.StartsWith($"{path}:4: ", loaded.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0100000000000000000000000000000000000000000000000000000000000000", "the key an anonymous client sends")]
    [InlineData("0000000000000000000000000000000000000000000000000000000000000000 placeholder", "all zeros")]
    public void AKeyNoClientCanProveIsReportedWithItsNumber(string line, string which)
    {
        // The handshake refuses both keys: such a line admits nobody, and a file of them admitted nobody in silence.
        string text = $"{KeyA}\n{line}\n";

        FormatException parsed = Assert.Throws<FormatException>(() => OssuaryAuthorizedKeys.Parse(new StringReader(text)));
        Assert.StartsWith("authorized keys:2: ", parsed.Message, StringComparison.Ordinal);
        Assert.Contains(which, parsed.Message, StringComparison.Ordinal);
    }
}
