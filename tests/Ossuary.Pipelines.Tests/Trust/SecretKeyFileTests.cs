using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Tests.Trust;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // file modes are a Unix concept
public sealed class SecretKeyFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ossuary-keyfile-").FullName;

    [Fact]
    public void AWrittenKeyReadsBackOwnerOnly()
    {
        string path = Path.Combine(_dir, "a.key");
        using var identity = OssuaryIdentity.Generate();

        OssuarySecretKeyFile.Write(path, identity);
        using OssuaryIdentity read = OssuarySecretKeyFile.Read(path);

        Assert.Equal(identity.PublicKey, read.PublicKey);
        Assert.Equal(65, new FileInfo(path).Length);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.False(OssuarySecretKeyFile.IsAccessibleByOthers(path));
    }

    [Fact]
    public async Task WritingAKeyNeverChangesTheModeOfAnotherFile()
    {
        // A user who can write the folder swaps the new key file for a link to another file (a
        // rename over it) right after it is written: the owner-only mode is for the key file, and
        // must never land on what the name leads to a moment later (made 0600, that file is lost to its readers).
        const UnixFileMode Shared = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

        // In memory (tmpfs) where the machine has one: every try syncs its key to disk, and 20,000
        // syncs to a real disk took most of a minute; what is raced here is names and modes, which
        // tmpfs has as a disk does.
        string dir = Directory.Exists("/dev/shm") ? Directory.CreateDirectory(Path.Combine("/dev/shm", Path.GetFileName(_dir))).FullName : _dir;
        try
        {
            await RaceKeyWritesAgainstALinkAsync(dir, Shared);
        }
        finally
        {
            if (dir != _dir)
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    private static async Task RaceKeyWritesAgainstALinkAsync(string dir, UnixFileMode shared)
    {
        string other = Path.Combine(dir, "shared.txt");
        string name = Path.Combine(dir, "new.key");
        File.WriteAllText(other, "everyone reads this\n");
        File.SetUnixFileMode(other, shared);
        using var identity = OssuaryIdentity.Generate();

        using var stop = new CancellationTokenSource();
        var swapper = Task.Run(() =>
        {
            string draft = Path.Combine(dir, "draft.link");
            while (!stop.IsCancellationRequested)
            {
                File.CreateSymbolicLink(draft, other);
                File.Move(draft, name, overwrite: true);
            }
        });

        try
        {
            for (int i = 0; i < 20_000 && File.GetUnixFileMode(other) == shared; i++)
            {
                File.Delete(name);
                try
                {
                    OssuarySecretKeyFile.Write(name, identity);
                }
                catch (IOException)
                {
                    // The link came back before the key file could be made: it is never written through.
                }
            }
        }
        finally
        {
            stop.Cancel();
            await swapper.Within();
        }

        Assert.Equal(shared, File.GetUnixFileMode(other));
    }

    [Fact]
    public void WritingAKeyLeavesNoCopyOfItInMemory()
    {
        // What the file gets, kept for the search in one pinned array the search skips.
        byte[] hex = GC.AllocateArray<byte>(OssuaryIdentity.SeedSize * 2, pinned: true);
        try
        {
            using (var identity = OssuaryIdentity.Generate())
            {
                Span<char> chars = stackalloc char[OssuaryIdentity.SeedSize * 2];
                Assert.True(identity.TryFormatSeedHex(chars, out _));
                System.Text.Encoding.ASCII.GetBytes(chars, hex);
                chars.Clear();

                OssuarySecretKeyFile.Write(Path.Combine(_dir, "g.key"), identity);
            }

            int copies = ProcessMemory.Count(hex);
            using (OssuaryIdentity read = OssuarySecretKeyFile.Read(Path.Combine(_dir, "g.key")))
            {
                Span<char> chars = stackalloc char[OssuaryIdentity.SeedSize * 2];
                Assert.True(read.TryFormatSeedHex(chars, out _));
                Assert.True(System.Text.Encoding.ASCII.GetString(hex).AsSpan().SequenceEqual(chars)); // written: the search had something to find
                chars.Clear();
            }

            Assert.Equal(0, copies);
        }
        finally
        {
            Array.Clear(hex);
        }
    }

    [Fact]
    public void AByteOrderMarkAndWindowsLineEndIsAccepted()
    {
        using var identity = OssuaryIdentity.Generate();
        Span<char> hex = stackalloc char[64];
        Assert.True(identity.TryFormatSeedHex(hex, out _));
        byte[] content = [0xEF, 0xBB, 0xBF, .. System.Text.Encoding.ASCII.GetBytes(new string(hex) + "\r\n")];

        using OssuaryIdentity read = OssuarySecretKeyFile.Read(new MemoryStream(content), "stdin");

        Assert.Equal(identity.PublicKey, read.PublicKey);
    }

    [Fact]
    public void AStreamThatReadsOnlyIntoArraysLeavesNoCopyOfTheKeyInTheSharedPool()
    {
        // A stream that implements only Read(byte[], int, int), as many do (Stream's span overload then
        // reads through an array from ArrayPool<byte>.Shared and gives it back as it is).
        using var identity = OssuaryIdentity.Generate();
        Span<char> hex = stackalloc char[64];
        Assert.True(identity.TryFormatSeedHex(hex, out _));
        byte[] content = System.Text.Encoding.ASCII.GetBytes(new string(hex) + "\n");

        using (OssuaryIdentity read = OssuarySecretKeyFile.Read(new ArrayOnlyStream(content), "vault"))
        {
            Assert.Equal(identity.PublicKey, read.PublicKey);
        }

        // On this thread, the pool hands back the array it was last given for this size.
        byte[] rented = System.Buffers.ArrayPool<byte>.Shared.Rent(128);
        try
        {
            Assert.Equal(-1, rented.AsSpan().IndexOf(content.AsSpan(0, 16)));
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented, clearArray: true);
            Array.Clear(content);
        }
    }

    [Fact]
    public void AnEndlessStreamIsRefusedAfterAKeyFilesLength()
    {
        var endless = new CountingStream();

        FormatException error = Assert.Throws<FormatException>(() => OssuarySecretKeyFile.Read(endless, "junk"));

        Assert.StartsWith("junk:", error.Message, StringComparison.Ordinal);
        Assert.True(endless.BytesRead < 4096, $"read {endless.BytesRead} bytes of junk"); // a key file's length and a little, never the whole
    }

    [Fact]
    public void AnExistingFileIsNeverOverwritten()
    {
        string path = Path.Combine(_dir, "b.key");
        File.WriteAllText(path, "keep me");
        using var identity = OssuaryIdentity.Generate();

        Assert.Throws<IOException>(() => OssuarySecretKeyFile.Write(path, identity));
        Assert.Equal("keep me", File.ReadAllText(path));
    }

    [Theory]
    [InlineData("/dev/zero")]
    [InlineData("/dev/null")]
    public void ADeviceIsRefusedAsOneNotAsAFileToChmod(string device)
    {
        // Its mode (0666) was taken for a key file's: "fix with: chmod 600 /dev/zero", advice that, taken
        // as root, breaks the system for every other user.
        UnauthorizedAccessException refused = Assert.Throws<UnauthorizedAccessException>(() => OssuarySecretKeyFile.Read(device));

        Assert.Contains("a device, not a regular file", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("chmod", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AWrittenKeyIsSyncedToDiskWithItsNameBeforeWriteReturns()
    {
        // Write synced the key's bytes but not the folder that link(2) then gave it its name in: a crash
        // soon after the call returned (the public key handed out) could leave the folder without the name,
        // the secret lost, and the next start making a key no peer trusts. The folder is synced after the naming.
        string strace = await DebianPrerequisites.FindOrInstallAsync(["/usr/bin/strace"], "strace", CancellationToken.None);
        string keys = Directory.CreateDirectory(Path.Combine(_dir, "keys")).FullName;
        string path = Path.Combine(keys, "host.key");
        string log = Path.Combine(_dir, "strace.log");
        using var identity = OssuaryIdentity.Generate();
        using (SelfTrace.Start(strace, "fsync,fdatasync,link,linkat,rename,renameat,renameat2", log))
        {
            OssuarySecretKeyFile.Write(path, identity);
        }

        // strace -y shows each descriptor's path; ReadCalls gives the calls whole, in the order they were made.
        string[] calls = [.. SelfTrace.ReadCalls(log).Where(line => line.Contains(keys, StringComparison.Ordinal))];
        string trace = string.Join('\n', calls);
        int named = Array.FindIndex(calls, line => line.Contains("link", StringComparison.Ordinal) && line.Contains($"\"{path}\"", StringComparison.Ordinal) && line.EndsWith("= 0", StringComparison.Ordinal));
        int folderSynced = Array.FindLastIndex(calls, line => line.Contains("sync(", StringComparison.Ordinal) && line.Contains($"<{keys}>) = 0", StringComparison.Ordinal));
        Assert.True(named >= 0, $"no link to {path} in the trace:\n{trace}");
        Assert.True(folderSynced > named, $"the folder was not synced after the key got its name:\n{trace}");
        using OssuaryIdentity read = OssuarySecretKeyFile.Read(path);
        Assert.Equal(identity.PublicKey, read.PublicKey);
    }

    [Fact]
    public void AKeyThatCannotBeWrittenLeavesNoFileAndAWriteAfterTheDiskHasRoomSucceeds()
    {
        // The disk is full: the file can be created, not written. An empty owner-only file used to
        // keep the name, so the retry said it exists and every read called it malformed.
        using var disk = FullDisk.Mount();
        disk.Fill();
        string path = Path.Combine(disk.Path, "host.key");
        using var identity = OssuaryIdentity.Generate();

        IOException full = Assert.Throws<IOException>(() => OssuarySecretKeyFile.Write(path, identity));

        Assert.Contains("No space left on device", full.Message, StringComparison.Ordinal);
        Assert.Equal([".filler"], Directory.GetFileSystemEntries(disk.Path).Select(Path.GetFileName));
        disk.Free();
        OssuarySecretKeyFile.Write(path, identity);
        using OssuaryIdentity read = OssuarySecretKeyFile.Read(path);
        Assert.Equal(identity.PublicKey, read.PublicKey);
        Assert.Equal(["host.key"], Directory.GetFileSystemEntries(disk.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void AKeyThatCannotBeWrittenIsReportedUnderItsOwnNameNotItsDrafts()
    {
        // The key is written to a draft beside its name first; the system's messages named the draft
        // (".ossuary-key.<guid>.tmp", a file the caller never named), in a missing folder and on a full disk alike.
        using var identity = OssuaryIdentity.Generate();
        string missing = Path.Combine(_dir, "missing", "d.key");
        DirectoryNotFoundException notFound = Assert.Throws<DirectoryNotFoundException>(() => OssuarySecretKeyFile.Write(missing, identity));
        Assert.Contains(missing, notFound.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(".ossuary-key", notFound.Message, StringComparison.Ordinal);

        using var disk = FullDisk.Mount();
        disk.Fill();
        string full = Path.Combine(disk.Path, "host.key");
        IOException noSpace = Assert.Throws<IOException>(() => OssuarySecretKeyFile.Write(full, identity));
        Assert.Contains("No space left on device", noSpace.Message, StringComparison.Ordinal);
        Assert.Contains(full, noSpace.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(".ossuary-key", noSpace.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AFolderIsRefusedAsAFolder()
    {
        // A folder named where the key file belongs was refused as "Access to the path ... is denied.",
        // which reads as a permission to fix, at a server's start-up as anywhere.
        UnauthorizedAccessException refused = Assert.Throws<UnauthorizedAccessException>(() => OssuarySecretKeyFile.Read(_dir));

        Assert.Equal($"{_dir}: the secret key file is a folder, not a file; name the file.", refused.Message);
    }

    [Fact]
    public void AMalformedFileIsNamedButNotQuoted()
    {
        string path = Path.Combine(_dir, "c.key");
        string almost = new string('a', 63) + "z";
        File.WriteAllText(path, almost);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite); // else it is refused before it is read

        FormatException error = Assert.Throws<FormatException>(() => OssuarySecretKeyFile.Read(path));

        Assert.Contains("c.key", error.Message);
        Assert.DoesNotContain(almost, error.Message);
    }

    [Fact]
    public void AGroupReadableFileIsReportedAsAccessibleByOthers()
    {
        string path = Path.Combine(_dir, "d.key");
        using var identity = OssuaryIdentity.Generate();
        OssuarySecretKeyFile.Write(path, identity);

        File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.GroupRead);

        Assert.True(OssuarySecretKeyFile.IsAccessibleByOthers(path));
    }

    [Fact]
    public void AFileOthersMayReadIsRefusedWithoutRevealingTheKey()
    {
        string path = Path.Combine(_dir, "e.key");
        using var identity = OssuaryIdentity.Generate();
        OssuarySecretKeyFile.Write(path, identity);
        File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.OtherRead);

        var refused = Assert.Throws<UnauthorizedAccessException>(() => OssuarySecretKeyFile.Read(path));

        Assert.Contains("e.key", refused.Message);
        Assert.Contains("chmod 600", refused.Message);
        Assert.DoesNotContain(identity.PublicKey.ToString(), refused.Message);
    }

    [Fact]
    public void AKeyFileAnotherUserOwnsIsRefusedWithoutRevealingTheKey()
    {
        // Owner-only, but the owner is someone else: they know the key, and may open it to anyone.
        string path = Path.Combine(_dir, "f.key");
        using var identity = OssuaryIdentity.Generate();
        OssuarySecretKeyFile.Write(path, identity);
        if (!ForeignOwner.TryGiveAway(path))
        {
            ForeignOwner.AssertOwnersAreRead(path);
            using OssuaryIdentity read = OssuarySecretKeyFile.Read(path);
            Assert.Equal(identity.PublicKey, read.PublicKey);
            return;
        }

        var refused = Assert.Throws<UnauthorizedAccessException>(() => OssuarySecretKeyFile.Read(path));

        Assert.Contains("f.key", refused.Message);
        Assert.Contains($"owned by user {ForeignOwner.Nobody}", refused.Message);
        Assert.DoesNotContain(identity.PublicKey.ToString(), refused.Message);
    }

    [Fact]
    public async Task AKeyFileSwappedForOneOthersMayReadIsNeverRead()
    {
        // The name flips between an owner-only key and one others may read (a link swapped by
        // rename, as a user who can write the folder could). Every key that is read must be the
        // owner-only one: the mode checked has to be the opened file's, not whatever the name led
        // to a moment before it was opened.
        string ownerOnly = Path.Combine(_dir, "private.key");
        string shared = Path.Combine(_dir, "shared.key");
        string name = Path.Combine(_dir, "server.key");
        using var privateIdentity = OssuaryIdentity.Generate();
        using var sharedIdentity = OssuaryIdentity.Generate();
        OssuarySecretKeyFile.Write(ownerOnly, privateIdentity);
        OssuarySecretKeyFile.Write(shared, sharedIdentity);
        File.SetUnixFileMode(shared, File.GetUnixFileMode(shared) | UnixFileMode.OtherRead);
        File.CreateSymbolicLink(name, ownerOnly);

        using var stop = new CancellationTokenSource();
        var swapper = Task.Run(() =>
        {
            string draft = Path.Combine(_dir, "draft.link");
            for (int i = 0; !stop.IsCancellationRequested; i++)
            {
                File.CreateSymbolicLink(draft, i % 2 == 0 ? shared : ownerOnly);
                File.Move(draft, name, overwrite: true); // rename(2): the name always leads somewhere
            }
        });

        int readShared = 0;
        try
        {
            for (int i = 0; i < 20_000 && readShared == 0; i++)
            {
                try
                {
                    using OssuaryIdentity read = OssuarySecretKeyFile.Read(name);
                    readShared += read.PublicKey == sharedIdentity.PublicKey ? 1 : 0;
                }
                catch (UnauthorizedAccessException)
                {
                    // The shared key, refused: as it should be.
                }
            }
        }
        finally
        {
            stop.Cancel();
            await swapper.Within();
        }

        Assert.Equal(0, readShared);
    }

    [Fact]
    public void TheTelemetrySampleRefusesASecretKeyFileOthersMayRead()
    {
        string path = Path.Combine(_dir, "server.key");
        using var identity = OssuaryIdentity.Generate();
        Ossuary.Samples.Telemetry.Keys.KeyFiles.WriteSecretKey(path, identity);
        File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.GroupRead);

        Assert.Throws<UnauthorizedAccessException>(() => Ossuary.Samples.Telemetry.Keys.KeyFiles.ReadSecretKey(path));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A stream with only the array overload of Read, over <paramref name="content"/>.</summary>
    private sealed class ArrayOnlyStream(byte[] content) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            int length = Math.Min(count, content.Length - _position);
            content.AsSpan(_position, length).CopyTo(buffer.AsSpan(offset));
            _position += length;
            return length;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>An endless stream of 'a's that counts what was read from it.</summary>
    private sealed class CountingStream : Stream
    {
        public long BytesRead { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            buffer.Fill((byte)'a');
            BytesRead += buffer.Length;
            return buffer.Length;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
